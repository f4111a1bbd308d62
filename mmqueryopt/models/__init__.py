"""The hashing models' parts, each a registry type: the retriever, necks,
heads, losses, database strategies and the layers they share."""
from .databases import (ADSHDatabase, DatabaseView, EncodedDatabase,
                        HashDatabase, similarity, soft_negative)
from .hash_retriever import HashRetriever, binarize
from .heads import (AGMHHashHead, BaseHashHead, QueryHashHead,
                    TiedAutoencoderHashHead)
from .layers import (CrossAttentionDecoderLayer, EncoderLayer,
                     StepwiseExternalAttention, backbone_map_shapes)
from .losses import A2NetLoss, ADSHLoss, AGMHLoss, AttentionDispersionLoss
from .necks import (AttributeAttentionNeck, AttributeDescriptorNeck,
                    SubtleFeatureNeck)

__all__ = [
    'HashRetriever', 'binarize', 'ADSHDatabase', 'DatabaseView',
    'EncodedDatabase', 'HashDatabase', 'similarity', 'soft_negative',
    'BaseHashHead', 'QueryHashHead', 'TiedAutoencoderHashHead',
    'AGMHHashHead', 'SubtleFeatureNeck', 'AttributeAttentionNeck',
    'AttributeDescriptorNeck', 'ADSHLoss', 'A2NetLoss', 'AGMHLoss',
    'AttentionDispersionLoss', 'EncoderLayer', 'CrossAttentionDecoderLayer',
    'StepwiseExternalAttention', 'backbone_map_shapes'
]
