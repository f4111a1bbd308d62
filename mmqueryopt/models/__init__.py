from .hash_retriever import HashRetriever, binarize
from .heads import QueryHashHead
from .layers import CrossAttentionDecoderLayer, EncoderLayer
from .losses import ADSHLoss, similarity
from .necks import SubtleFeatureNeck

__all__ = [
    'HashRetriever', 'binarize', 'QueryHashHead', 'SubtleFeatureNeck',
    'ADSHLoss', 'similarity', 'EncoderLayer', 'CrossAttentionDecoderLayer'
]
