"""Key rules for FISH's reference model (aassxun/DSH_Analysis ``fish.py``:
``models/fish.py`` fish_ResNet50, a torchvision resnet50 under ``model.``
with ``model.fc`` = Linear(2048, C) the class logits and ``model.b`` =
Linear(C, k) the hash layer).

The ResNet-50 keeps MMPretrain ResNet's names under ``backbone.``; ``fc``
and ``b`` become ``ClassMaskedHashHead``'s ``classifier`` and
``hash_layer``. The label codes are not in the model: ``LabelCodeDatabase``
computes them from the training labels.
"""
# A key only FISH's checkpoints have.
SIGNATURE = r'^model\.b\.weight$'
# The converted key whose rows are the bits.
CODE_LENGTH_KEY = 'head.hash_layer.weight'

# (pattern on the reference's key, replacement); the first match wins.
KEY_RULES = [
    (r'^model\.(conv1|bn1|layer[1-4])\.', r'backbone.\1.'),
    (r'^model\.fc\.', 'head.classifier.'),
    (r'^model\.b\.', 'head.hash_layer.'),
]
