from .transformer import CrossAttentionDecoderLayer, EncoderLayer

__all__ = ['EncoderLayer', 'CrossAttentionDecoderLayer']
