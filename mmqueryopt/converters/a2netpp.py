"""Key rules for A2-Net's reference model (aassxun/DSH_Analysis
``models/A_2_net.py``) into an A2-Net++ model: A2-Net's rules, with the
image generators kept.

Its keys are A2-Net's (the reference always holds the generators, whether
its run trained them or not), so the keys cannot tell the two apart: this
format is chosen with ``--method a2netpp`` only.
"""
from .a2net import CODE_LENGTH_KEY, KEY_RULES  # noqa: F401

# None: never told by the keys (they are A2-Net's); named with --method.
SIGNATURE = None
