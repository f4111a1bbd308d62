# A2-Net (Wei et al., NeurIPS 2021) on ImageNet-pretrained ResNet-50, as
# in the co-author's code (aassxun/DSH_Analysis models/A_2_net.py; see
# docs/a2net.md): stem..layer3 as the backbone (T: 1024 x 14 x 14), one
# attention map per bit (M = k), a shared local layer4 copy over the M
# attended maps and a global layer4 copy, both loaded from the checkpoint's
# layer4; tied W (k x (M + 1) * 2048); tanh codes. 12 bits here: a config
# for k bits sets neck.num_attentions=k, head.code_length=k and
# head.in_channels=(k + 1) * 2048.
model = dict(
    # Scoped: mmpretrain.get_model builds models in MMPretrain's scope,
    # where only the prefixed name finds ours.
    type='mmqueryopt.HashRetriever',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    # num_stages=3: no layer4 in the backbone; the neck holds two copies.
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='AttributeAttentionNeck',
        num_attentions=12,
        in_channels=1024,
        out_channels=2048,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='torchvision://resnet50',
            prefix='layer4.')),
    head=dict(
        type='TiedAutoencoderHashHead',
        code_length=12,
        in_channels=13 * 2048),
    # The code's loss: reconstruction and decorrelation (decorr normalised
    # by its configured batch size, 16) from half the run's rounds on
    # (switch_round=None: max_epochs // 2, as the code switches).
    # formulation='paper' switches to the paper's weights.
    loss=dict(
        type='A2NetLoss',
        formulation='code',
        rec_weight=1.0,
        decorr_weight=1.0,
        decorr_batch_size=16),
    # The code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
