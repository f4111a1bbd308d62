"""Key rules for the QueryOpt authors' checkpoint.

The authors' model (DETR-style: ``backbone.0.body`` is a torchvision
ResNet-50, ``backbone.0.deconv`` / ``conv_layer3`` the top-down fusion,
``backbone.1`` the position tables, ``transformer`` the encoder and decoder)
maps one to one onto ``HashRetriever``'s backbone, neck and head.
"""
# A key only QueryOpt's checkpoints have, to detect the format.
SIGNATURE = r'^query_embed\.weight$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.query_embed.weight'

# (pattern on the authors' key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.0\.body\.', 'backbone.'),
    (r'^backbone\.0\.conv_layer3\.', 'neck.lateral.'),
    (r'^backbone\.0\.deconv\.', 'neck.top_down.'),
    (r'^backbone\.1\.(row|col)_embed\.', r'neck.\1_embed.'),
    (r'^input_proj_list\.', 'neck.input_projs.'),
    (r'^transformer\.encoder\.layers\.(\d+)\.linear(\d)\.',
     r'neck.encoder_layers.\1.ffn.linear\2.'),
    (r'^transformer\.encoder\.layers\.', 'neck.encoder_layers.'),
    (r'^transformer\.decoder\.layers\.0\.multihead_attn\.',
     'head.decoder_layer.cross_attn.'),
    (r'^transformer\.decoder\.layers\.0\.linear(\d)\.',
     r'head.decoder_layer.ffn.linear\1.'),
    # The authors' decoder keeps DETR's numbering with norm1 (the removed
    # self-attention's) missing: their norm2/norm3 are our norm1/norm2.
    (r'^transformer\.decoder\.layers\.0\.norm2\.', 'head.decoder_layer.norm1.'),
    (r'^transformer\.decoder\.layers\.0\.norm3\.', 'head.decoder_layer.norm2.'),
    (r'^transformer\.decoder\.norm\.', 'head.decoder_norm.'),
    (r'^query_embed\.', 'head.query_embed.'),
    (r'^hash_embed\.', 'head.bit_proj.'),
]
