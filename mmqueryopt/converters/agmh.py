"""Key rules for the AGMH authors' checkpoint (Lx-zjwf/AGMH
``models/AGMH.py``).

Their ``backbone`` is a torchvision-layout ResNet-50 (the names MMPretrain's
ResNet uses), ``refine.conv_list`` the descriptor branches,
``refine.attn_list`` the SIEA blocks and ``hash_map`` the hash layer.
"""
# A key only AGMH's checkpoints have, to detect the format.
SIGNATURE = r'^refine\.attn_list\.\d+\.qry_conv\.'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.hash_weight'

# (pattern on the authors' key, replacement); the first match wins.
_SIEA = r'^refine\.attn_list\.(\d+)\.'
KEY_RULES = [
    (r'^backbone\.', 'backbone.'),
    (r'^refine\.conv_list\.(\d+)\.([01])\.', r'neck.descriptor_convs.\1.\2.'),
    (_SIEA + r'conv1\.', r'neck.siea_blocks.\1.in_proj.'),
    (_SIEA + r'qry_conv\.', r'neck.siea_blocks.\1.head_queries.'),
    (_SIEA + r'alt_conv\.', r'neck.siea_blocks.\1.step_mixers.'),
    (_SIEA + r'linear\.', r'neck.siea_blocks.\1.memory_values.'),
    (_SIEA + r'conv2\.([01])\.', r'neck.siea_blocks.\1.out_proj.\2.'),
    (r'^hash_map$', 'head.hash_weight'),
]
