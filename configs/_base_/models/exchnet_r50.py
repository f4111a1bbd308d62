# ExchNet (Cui et al., ECCV 2020) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (adsh_exchnet.py, models/exchnet.py; see
# configs/exchnet/README.md): stem..layer3 as the backbone (T: 1024 x 14 x
# 14); A2-Net's attention tower with M = 4 part maps (random init); a shared
# local layer4 copy over the 4 attended maps and a global layer4 copy, both
# loaded from the checkpoint's layer4; Linear((4 + 1) * 2048, k) + tanh
# (PyTorch's default init). From round 35 (0-based, the reference's 36th
# iteration) training exchanges each part feature for its class anchor with
# probability 0.5 and aligns the parts to the anchors; ClassAnchorHook (in
# the configs' custom_hooks) computes the anchors after every round from 34
# on and the database keeps them. 12 bits here: a config for k bits sets
# head.code_length=k.
_base_ = ['./resnet50_layer3.py']

model = dict(
    neck=dict(
        type='ExchNetNeck',
        num_parts=4,
        exchange_round=35,
        exchange_prob=0.5,
        in_channels=1024,
        out_channels=2048,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='torchvision://resnet50',
            prefix='layer4.')),
    head=dict(type='ExchNetHashHead', code_length=12, in_channels=5 * 2048),
    # The trainer's weights (lambda_sp = lambda_ch = lambda_al = 1, t = 0.4).
    loss=dict(
        type='ExchNetLoss',
        spatial_weight=1.0,
        channel_weight=1.0,
        align_weight=1.0,
        channel_margin=0.4),
    # ADSH's database plus the class anchors. The reference's default run
    # (no --quan-loss): no quantisation term in the loss and B solved with
    # Q = k S^T U, i.e. gamma 0; soft similarity (+1 / -P/N).
    database=dict(type='ClassAnchorDatabase', gamma=0.0, similarity='soft'),
)
