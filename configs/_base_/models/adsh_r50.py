# ADSH (Jiang & Li, AAAI 2018) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (adsh.py, models/resnet.py): the whole
# ResNet-50 (stride on the 3x3 convs, torchvision's layout), global average
# pooling, one linear layer to the k bits (PyTorch's default init) and tanh;
# nothing frozen, BatchNorm in train mode. 12 bits here: a config for k bits
# sets head.code_length=k.
model = dict(
    # Scoped: mmpretrain.get_model builds models in MMPretrain's scope,
    # where only the prefixed name finds ours.
    type='mmqueryopt.HashRetriever',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearHashHead',
        code_length=12,
        in_channels=2048,
        activation='tanh'),
    loss=dict(type='ADSHLoss'),
    # The code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
