# DAHNet on the digits main job (see configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs, scaled down: a narrow CIFAR-style ResNet-18 from scratch, its
# stem..stage 3 as the backbone (64 x 8 x 8: FESM cuts it into 4 + 4
# stripes each way), a stage of two basic blocks (first stride 2, to
# 64 x 4 x 4) as the global copy, its first block as the part transition
# and [its second block, CFM] as the shared local refiner. The reference's
# CFM reshapes to a hard-coded 7x7; ours takes the map's 4x4 (identical at
# ResNet-50's 7x7). 6 + 2 + 2 + 2 bits, 10 classes for the classifiers, the
# soft ADSH loss and B.
_base_ = [
    '../_base_/models/dahnet_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/dahnet_r50.py) at the digits' size.
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
        num_refiner_blocks=2,
        # From scratch: no ImageNet layer4 to copy.
        init_cfg=None),
    head=dict(in_channels=64, num_classes=10),
)
# Five rounds, lr x 0.1 for the last: each round passes the three parts
# through the transition and the local copy besides the global copy, about
# twice SEMICON's work, and round 5 already retrieves at mAP ~0.98.
train_cfg = dict(max_epochs=5, val_interval=5)
param_scheduler = dict(milestones=[4])
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
