# QueryOpt on CUB-200-2011 at 12 bits with ViT-B/16 (MMPretrain's
# ImageNet-1k weights, vit-base-p16_32xb128-mae_in1k: supervised on
# ImageNet-1k only, like the other backbones) instead of ResNet-50: same
# head, ADSH loss and schedule.
#
# Optimiser: the CUB schedule's SGD (lr 3e-4, batch 16) is kept, without
# layer decay or a lower lr: ViT's own supervised fine-tuning recipe is SGD
# with momentum 0.9 at lr 0.001-0.03 for batch 512 (Dosovitskiy et al.,
# 2021), i.e. 3e-5-1e-3 at batch 16 by linear scaling, and 3e-4 lies inside
# it. Layer decay belongs to AdamW recipes of self-supervised weights (MAE,
# BEiT), which these are not.
_base_ = ['./queryopt_cub_12bit.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        # Blocks 9 and 12 as 768x14x14 maps, the last two of the four levels
        # (2, 5, 8, 11) that MMSegmentation's ViT UperNet takes. Block 12's
        # map goes through the final LayerNorm, block 9's does not.
        out_indices=(8, 11),
        out_type='featmap',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'vit/vit-base-p16_pt-32xb128-mae_in1k_20220623-4c544545.pth',
            prefix='backbone.')),
    # A plain ViT has no stages; its stem is the patch embedding with the
    # class token and position table. Frozen with them: the first 2 of 12
    # blocks, the share of depth that Swin-T's (2 of 12) and ConvNeXt-T's
    # (3 of 18) frozen first stages have.
    frozen_modules=('backbone.patch_embed', 'backbone.cls_token',
                    'backbone.pos_embed', 'backbone.layers.0',
                    'backbone.layers.1'),
    neck=dict(
        in_channels=(768, 768),
        # Both maps at stride 16: no upsampling in the top-down path.
        upsample_factor=1,
        # Two 14x14 levels need 14 + 14 = 28 table entries at 224, 56 at
        # 448; 64 covers inputs up to 512.
        num_pos_embeds=64))
