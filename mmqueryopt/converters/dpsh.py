"""Key rules for DeepHash-pytorch's ResNet (swuxyj/DeepHash-pytorch
``network.py``: torchvision's ResNet-50 and ``hash_layer = Linear(2048, k)``,
no tanh), the network of its ``DPSH.py`` and ``HashNet.py`` with
``net=ResNet``.

The model registers conv1..avgpool twice, as attributes and again inside
``feature_layers`` (a Sequential of the same modules), so its state dict
names every backbone tensor twice (``feature_layers.0`` is ``conv1``,
``feature_layers.4`` is ``layer1``, ...). The attribute names are kept (they
are MMPretrain ResNet's) and the ``feature_layers`` copies left out.
``hash_layer`` is the hash layer. A DeepHash-pytorch HashNet checkpoint has
the same keys, so it is detected as this format: the converted weights are
the same, and load into a HashNet config too.
"""
# A key only this network has (DSH_Analysis' ResNet calls its hash layer fc).
SIGNATURE = r'^hash_layer\.weight$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.fc.weight'

LEFT_OUT = r'^feature_layers\.'
LEFT_OUT_REASON = (
    "the second names of the backbone's tensors (DeepHash-pytorch's ResNet "
    'registers conv1..layer4 again in feature_layers: the same tensors, '
    'kept once under their own names)')

# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^(conv1|bn1|layer[1-4])\.', r'backbone.\1.'),
    (r'^hash_layer\.', 'head.fc.'),
]
