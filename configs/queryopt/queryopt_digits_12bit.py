# The newcomer's main job: QueryOpt on scikit-learn's bundled handwritten
# digits (real 8x8 scans, 10 classes), exported to the CUB layout by
# `python tools/export_digits.py data/digits` (fixed split: image i is a query
# when i % 5 == 0: 360 queries, 1,437 database images), at 32x32, on CPU in
# minutes. Same model and ADSH training as the paper's, scaled down: a narrow
# CIFAR-style ResNet-18 from scratch, d = 64, and a short schedule.
_base_ = [
    '../_base_/models/queryopt_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/queryopt_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        out_indices=(2, 3)),
    # From scratch: nothing to keep frozen.
    frozen_modules=(),
    neck=dict(
        in_channels=(64, 128),
        embed_dims=64,
        top_down_channels=32,
        num_heads=4,
        ffn_dims=128),
    head=dict(embed_dims=64, num_heads=4, ffn_dims=128))
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
