"""Key rules for ExchNet's reference model (aassxun/DSH_Analysis
``models/exchnet.py``, trained by ``adsh_exchnet.py``) into an ExchNet
model.

The reference's torchvision-layout backbone (stem..layer3) has MMPretrain
ResNet's names; its ``attention`` tower and ``refine_local`` /
``refine_global`` layer4 copies are A2-Net's (same layout, four maps) and
become the neck's tower and refiners; ``hash_layer.0`` (Linear + Tanh in a
Sequential) becomes the head's ``fc``. The reference keeps its class anchors
outside the state dict (``model.anchor_local_f``), so a converted model has
none (``neck.anchors_round`` -1) until a round from ``exchange_round`` on
computes them; evaluation does not use them.
"""
# A key only ExchNet's checkpoints have, to detect the format
# (DeepHash-pytorch's ResNet names its hash layer ``hash_layer`` without
# the Sequential's index).
SIGNATURE = r'^hash_layer\.0\.weight$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.fc.weight'

# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^backbone\.', 'backbone.'),
    (r'^attention\.layer4\.', 'neck.attention_tower.'),
    (r'^refine_local\.layer4\.', 'neck.local_refiner.'),
    (r'^refine_global\.layer4\.', 'neck.global_refiner.'),
    (r'^hash_layer\.0\.', 'head.fc.'),
]
