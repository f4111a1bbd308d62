"""Key rules for CSQ's reference model (aassxun/DSH_Analysis ``csq.py``):
the network of its ADSH (``models/resnet.py`` resnet50, ``fc`` the hash
layer, tanh), so the same keys; chosen with ``--method csq`` (the keys tell
``adsh``, which converts them the same way). The hash centres live in the
reference's loss, not its model: they are drawn anew by ``CSQLoss``.
"""
from .adsh import CODE_LENGTH_KEY, KEY_RULES  # noqa: F401

SIGNATURE = None
