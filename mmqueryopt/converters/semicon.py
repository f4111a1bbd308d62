"""Key rules for SEMICON's reference model (aassxun/DSH_Analysis
``models/SEMICON.py``, the same module as aassxun/SEMICON's) into a
SEMICON model.

The torchvision-layout ``backbone`` (stem..layer3) has MMPretrain ResNet's
names; ``attention.layer4`` (the tower) and ``attention.feature1..3`` (the
part heads) become the neck's ``attention_tower`` and ``mask_heads``;
``refine_global`` / ``refine_local`` (layer4 copies with channel
transformers at indices 2 and 4, whose ``qkv`` / ``qkv2`` are our
``channel_qkv`` / ``head_qkv``) the neck's refiners; the bare ``W_G``,
``W_L1..3`` the head's ``global_weight`` and ``local_weights``.
"""
# A key only SEMICON's checkpoints have: its stepwise part heads (A2-Net's
# tied weight is ``W``; DAHNet's hash weights are SEMICON's ``W_G``,
# ``W_L1..3``).
SIGNATURE = r'^attention\.feature1\.'
# No converted parameter has one row per bit: the code is split over four
# weights, whose rows add up to the bits (CODE_LENGTH_KEYS, which
# code_length() sums; CODE_LENGTH_KEY alone counts the global bits).
CODE_LENGTH_KEY = 'head.global_weight'
CODE_LENGTH_KEYS = ('head.global_weight', 'head.local_weights.0',
                    'head.local_weights.1', 'head.local_weights.2')


def _part_head(match) -> str:
    return f'neck.mask_heads.{int(match[1]) - 1}.'


def _local_weight(match) -> str:
    return f'head.local_weights.{int(match[1]) - 1}'


# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.', 'backbone.'),
    (r'^attention\.layer4\.', 'neck.attention_tower.'),
    (r'^attention\.feature([123])\.', _part_head),
    (r'^refine_(global|local)\.layer4\.(\d+)\.qkv\.',
     r'neck.\1_refiner.\2.channel_qkv.'),
    (r'^refine_(global|local)\.layer4\.(\d+)\.qkv2\.',
     r'neck.\1_refiner.\2.head_qkv.'),
    (r'^refine_(global|local)\.layer4\.', r'neck.\1_refiner.'),
    (r'^W_G$', 'head.global_weight'),
    (r'^W_L([123])$', _local_weight),
]
