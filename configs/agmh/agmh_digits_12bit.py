# AGMH on scikit-learn's bundled handwritten digits (real 8x8 scans, 10
# classes), exported to the CUB layout by
# `python tools/export_digits.py data/digits` (image i is a query when
# i % 5 == 0: 360 queries, 1,437 database images), at 32x32, on CPU in
# minutes. Same model and training as the paper's (descriptor branches with
# SIEA, ADSH with the soft similarity plus ADL at 0.5), scaled down: a narrow
# CIFAR-style ResNet-18 from scratch with the last stage at stride 1 (8x8
# maps, as ResNet-50's stride-1 layer4 keeps 14x14), six descriptors of 32
# channels, SIEA with 16 memory rows, and a short schedule.
_base_ = [
    '../_base_/models/agmh_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/agmh_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        strides=(1, 2, 2, 1),
        out_indices=(3, )),
    neck=dict(in_channels=128, descriptor_channels=32, memory_units=16),
    head=dict(in_channels=32),
)
# Batch 16, not the authors' 32: twice the steps per round on 1,000
# images. Evaluated after every round, as the authors do.
train_cfg = dict(val_interval=1)
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
