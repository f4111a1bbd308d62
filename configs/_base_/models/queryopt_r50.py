# QueryOpt on ImageNet-pretrained ResNet-50 (torchvision weights), d = 384.
_base_ = ['./hash_retriever_imagenet.py']

model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        out_indices=(2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # Frozen like the authors: no gradient, BatchNorm still in train mode.
    frozen_modules=('backbone.conv1', 'backbone.bn1', 'backbone.layer1'),
    neck=dict(
        type='SubtleFeatureNeck',
        in_channels=(1024, 2048),
        embed_dims=384,
        num_heads=8,
        ffn_dims=2048,
        num_layers=1),
    head=dict(
        type='QueryHashHead',
        code_length=12,
        relaxed_dims=96,
        embed_dims=384,
        num_heads=8,
        ffn_dims=2048),
    loss=dict(type='ADSHLoss'),
    # ADSH's learned database: binary similarity, gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='binary'),
)
