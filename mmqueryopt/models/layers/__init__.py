from .stepwise_external_attention import StepwiseExternalAttention
from .transformer import CrossAttentionDecoderLayer, EncoderLayer

__all__ = [
    'StepwiseExternalAttention', 'EncoderLayer', 'CrossAttentionDecoderLayer'
]
