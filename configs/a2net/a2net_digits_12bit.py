# A2-Net on the digits main job (see
# configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs, scaled down: a narrow CIFAR-style ResNet-18 from scratch, its
# stem..stage 3 as the backbone (64 x 8 x 8), 12 attention maps, local and
# global copies of a one-block stage 4 (a basic block to 64 x 4 x 4: the
# local path runs 12x per image, so it is kept narrow for CPU), tied W
# (12 x 13 * 64), the code's loss with the switch at half the rounds.
_base_ = [
    '../_base_/models/a2net_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/a2net_r50.py) at the digits' size.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, )),
    neck=dict(
        in_channels=64,
        out_channels=64,
        refiner_block='BasicBlock',
        num_refiner_blocks=1,
        # From scratch: no ImageNet layer4 to copy.
        init_cfg=None),
    head=dict(in_channels=13 * 64),
)
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
