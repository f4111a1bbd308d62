from .backbone_shapes import backbone_map_shapes
from .position_distributions import position_distributions
from .stepwise_external_attention import StepwiseExternalAttention
from .transformer import CrossAttentionDecoderLayer, EncoderLayer

__all__ = [
    'backbone_map_shapes', 'position_distributions',
    'StepwiseExternalAttention', 'EncoderLayer', 'CrossAttentionDecoderLayer'
]
