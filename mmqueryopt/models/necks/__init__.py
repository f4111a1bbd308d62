from .subtle_feature_neck import SubtleFeatureNeck

__all__ = ['SubtleFeatureNeck']
