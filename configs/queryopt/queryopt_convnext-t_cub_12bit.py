# QueryOpt on CUB-200-2011 at 12 bits with ConvNeXt-T (MMPretrain's
# ImageNet-1k weights, convnext-tiny_32xb128_in1k) instead of ResNet-50:
# same neck, head, ADSH loss and schedule.
_base_ = ['./queryopt_cub_12bit.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch='tiny',
        # Stages 2 and 3 as maps (384x14x14, 768x7x7 at 224): without
        # gap_before_final_norm=False ConvNeXt pools them to vectors. norm2
        # is not in the ImageNet checkpoint (trained on stage 3 only) and
        # starts as identity.
        out_indices=(2, 3),
        gap_before_final_norm=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth',
            prefix='backbone.')),
    # The authors' idea as for ResNet-50: the stem and the first stage (at
    # stride 4) keep ImageNet's weights; their LayerNorms have no running
    # statistics, so nothing else of theirs changes in training.
    frozen_modules=('backbone.downsample_layers.0', 'backbone.stages.0'),
    neck=dict(in_channels=(384, 768)))
