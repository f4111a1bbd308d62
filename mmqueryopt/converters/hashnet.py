"""Key rules for HashNet's two reference models into a HashNet model: the
network of aassxun/DSH_Analysis ``hashnet.py`` (``models/resnet.py``, the
keys of its ADSH: ``conv1, bn1, layer1..4, fc``) and that of
swuxyj/DeepHash-pytorch ``HashNet.py`` with ``net=ResNet`` (``network.py``,
the keys of its DPSH: the backbone twice and ``hash_layer``).

Neither has keys of its own (the first are ADSH's, the second DPSH's), so
the keys detect ``adsh`` or ``dpsh``, whose converted weights are the same:
this format is chosen with ``--method hashnet`` only, and takes either.
"""
from .adsh import KEY_RULES as DSH_KEY_RULES
from .dpsh import KEY_RULES as DHP_KEY_RULES
from .dpsh import CODE_LENGTH_KEY, LEFT_OUT, LEFT_OUT_REASON  # noqa: F401

# None: never told by the keys; named with --method.
SIGNATURE = None

# DSH_Analysis' rules, then DeepHash-pytorch's hash layer; the first match
# wins.
KEY_RULES = DSH_KEY_RULES + DHP_KEY_RULES[1:]
