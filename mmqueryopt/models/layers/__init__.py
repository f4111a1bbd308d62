from .backbone_shapes import backbone_map_shapes
from .stepwise_external_attention import StepwiseExternalAttention
from .transformer import CrossAttentionDecoderLayer, EncoderLayer

__all__ = [
    'backbone_map_shapes', 'StepwiseExternalAttention', 'EncoderLayer', 'CrossAttentionDecoderLayer'
]
