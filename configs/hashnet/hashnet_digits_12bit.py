# HashNet on the digits main job (see configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs (pooled features, one linear layer, the pairwise loss against the
# code memory, the database encoded at evaluation), scaled down: a narrow
# CIFAR-style ResNet-18 from scratch, the digits schedule (AdamW).
_base_ = [
    '../_base_/models/hashnet_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/hashnet_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        out_indices=(3, )),
    # Continuation one step a round (scale 1 to sqrt(10) over 10 rounds of
    # 3 passes).
    head=dict(in_channels=128, step_passes=3),
    # The HashNet authors' alpha, 10 / k (thuml/HashNet pytorch/src/train.py
    # sigmoid_param). With DSH_Analysis' and DeepHash-pytorch's 0.1, a
    # network trained from scratch here put every digit on one of two
    # opposite codes (mAP 0.20).
    loss=dict(alpha=10 / 12))
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
