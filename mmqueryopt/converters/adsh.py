"""Key rules for ADSH's reference model (aassxun/DSH_Analysis ``adsh.py``:
``models/resnet.py`` resnet50 with ``fc = Linear(2048, k)`` and a tanh
output).

Its torchvision-layout ResNet-50 has MMPretrain ResNet's names; ``fc`` is
the hash layer. DSH_Analysis' HashNet (``hashnet.py``) and CSQ (``csq.py``)
build the same network (same keys), so their checkpoints are detected as
ADSH's: the converted weights are the same either way, and load into each
method's config.
"""
# A key only this family's checkpoints have (DeepHash-pytorch's ResNet
# names its hash layer ``hash_layer``; the attention models have a
# ``backbone.`` prefix).
SIGNATURE = r'^fc\.weight$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.fc.weight'

# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^(conv1|bn1|layer[1-4])\.', r'backbone.\1.'),
    (r'^fc\.', 'head.fc.'),
]
