# CSQ on the digits main job (see configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs (pooled features, one linear layer, tanh, codes pulled to the 10
# classes' centres, the database encoded at evaluation), scaled down: a
# narrow CIFAR-style ResNet-18 from scratch, the digits schedule (AdamW).
_base_ = [
    '../_base_/models/csq_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/csq_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        out_indices=(3, )),
    head=dict(in_channels=128),
    loss=dict(num_classes=10))
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
