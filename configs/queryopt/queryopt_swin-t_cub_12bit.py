# QueryOpt on CUB-200-2011 at 12 bits with Swin-T (MMPretrain's ImageNet-1k
# weights, swin-tiny_16xb64_in1k) instead of ResNet-50: same neck, head,
# ADSH loss and schedule.
_base_ = ['./queryopt_cub_12bit.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        arch='tiny',
        img_size=224,
        # Stages 2 and 3 (384x14x14, 768x7x7 at 224), each through its own
        # LayerNorm; norm2 is not in the ImageNet checkpoint (trained on
        # stage 3 only) and starts as identity.
        out_indices=(2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'swin-transformer/'
            'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth',
            prefix='backbone.')),
    # The authors' idea as for ResNet-50: the patch embedding (stem) and the
    # first stage's blocks (at stride 4) keep ImageNet's weights. The patch
    # merging at the end of stages.0 makes stage 1's stride-8 input and
    # trains, like the strided first block of ResNet's layer2.
    frozen_modules=('backbone.patch_embed', 'backbone.stages.0.blocks'),
    neck=dict(in_channels=(384, 768)))
