from mmqueryopt.registry import import_submodules
from .attribute_attention_neck import AttributeAttentionNeck
from .attribute_descriptor_neck import AttributeDescriptorNeck
from .subtle_feature_neck import SubtleFeatureNeck

# Any further module of this folder registers its parts too.
import_submodules(__name__)

__all__ = [
    'AttributeAttentionNeck', 'AttributeDescriptorNeck', 'SubtleFeatureNeck'
]
