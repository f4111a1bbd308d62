from .attribute_descriptor_neck import AttributeDescriptorNeck
from .subtle_feature_neck import SubtleFeatureNeck

__all__ = ['AttributeDescriptorNeck', 'SubtleFeatureNeck']
