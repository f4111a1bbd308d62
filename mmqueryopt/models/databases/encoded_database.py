"""The database as the network's own codes of the training images."""
from mmqueryopt.registry import MODELS
from .base import HashDatabase


@MODELS.register_module()
class EncodedDatabase(HashDatabase):
    """No state: training fits the network through its own loss (HashNet,
    DPSH, CSQ), and evaluation encodes the training images with the network
    (``RetrievalDatabaseHook(source='encoded')``, ``tools/test.py
    --database encoded``).

    Args:
        code_width (int): Unused; every strategy is told its head's width.
    """

    def __init__(self, code_width: int = 0):
        super().__init__()
