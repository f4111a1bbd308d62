from .attribute_attention_neck import AttributeAttentionNeck
from .attribute_descriptor_neck import AttributeDescriptorNeck
from .subtle_feature_neck import SubtleFeatureNeck

__all__ = [
    'AttributeAttentionNeck', 'AttributeDescriptorNeck', 'SubtleFeatureNeck'
]
