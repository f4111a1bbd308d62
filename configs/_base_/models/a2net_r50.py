# A2-Net (Wei et al., NeurIPS 2021) on ImageNet-pretrained ResNet-50, as
# in the co-author's code (aassxun/DSH_Analysis models/A_2_net.py; see
# docs/a2net.md): stem..layer3 as the backbone (T: 1024 x 14 x 14), one
# attention map per bit (M = k), a shared local layer4 copy over the M
# attended maps and a global layer4 copy, both loaded from the checkpoint's
# layer4; tied W (k x (M + 1) * 2048); tanh codes. 12 bits here: a config
# for k bits sets neck.num_attentions=k, head.code_length=k and
# head.in_channels=(k + 1) * 2048.
_base_ = ['./resnet50_layer3.py']

model = dict(
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
