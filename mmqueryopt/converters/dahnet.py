"""Key rules for DAHNet's reference model (aassxun/DSH_Analysis
``models/DAHNET.py``; WhiteJiang/DAHNet's has the same keys) into a DAHNet
model.

The torchvision-layout ``backbone`` (stem..layer3) has MMPretrain ResNet's
names; FESM's ``attention.stripconv`` / ``stripconv_h`` (row and column
stripe scorers) become the neck's ``enhance_suppress.row_scorer`` /
``col_scorer``; ``trans.layer4.0`` the ``part_transition``;
``refine_global.layer4`` the ``global_refiner``; ``refine_local.layer4``
([bottleneck, CFM, bottleneck]) the ``local_refiner``, its CFM's
``channel_mixer.channel_att`` / ``channel_mixer.mlp`` our
``coord_attention`` / ``mlp``; the bare ``W_G``, ``W_L1..3`` the head's
``global_weight`` and ``local_weights``; ``cls`` / ``cls_loc`` the head's
train-only ``cls`` / ``part_cls``.
"""
from .semicon import CODE_LENGTH_KEY, CODE_LENGTH_KEYS  # noqa: F401
from .semicon import _local_weight

# A key only DAHNet's checkpoints have (FESM's stripe scorer).
SIGNATURE = r'^attention\.stripconv\.0\.weight$'
# SEMICON's head holds the bits (see semicon.py's CODE_LENGTH_KEYS).

_CFM = r'^refine_local\.layer4\.1\.channel_mixer\.'
# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.', 'backbone.'),
    (r'^attention\.stripconv_h\.', 'neck.enhance_suppress.col_scorer.'),
    (r'^attention\.stripconv\.', 'neck.enhance_suppress.row_scorer.'),
    (r'^trans\.layer4\.0\.', 'neck.part_transition.0.'),
    (r'^refine_global\.layer4\.', 'neck.global_refiner.'),
    (_CFM + r'channel_att\.', 'neck.local_refiner.1.coord_attention.'),
    (_CFM + r'mlp\.', 'neck.local_refiner.1.mlp.'),
    (r'^refine_local\.layer4\.', 'neck.local_refiner.'),
    (r'^W_G$', 'head.global_weight'),
    (r'^W_L([123])$', _local_weight),
    (r'^cls\.', 'head.cls.'),
    (r'^cls_loc\.', 'head.part_cls.'),
]
