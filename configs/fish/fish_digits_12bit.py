# FISH on the digits main job (see configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs (feature filter, class logits, class-masked hash layer, CE on the
# image and on its peak-erased copy, codes regressed to the label codes,
# evaluated against them), scaled down: a narrow CIFAR-style ResNet-18 from
# scratch, the digits schedule (AdamW). 12 bits for 10 classes: two more
# than the labels' rank, which the label codes still follow here (the
# database refuses a length whose codes do not).
_base_ = [
    '../_base_/models/fish_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/fish_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        out_indices=(3, )),
    head=dict(in_channels=128, num_classes=10))
# Two forward passes a step (the image and its erased copy): 4 of the
# digits schedule's 10 rounds, evaluated after rounds 2 and 4, lr x 0.1
# for the last, keep the run within minutes on 2 cores.
train_cfg = dict(max_epochs=4, val_interval=2)
param_scheduler = dict(milestones=[3])
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
