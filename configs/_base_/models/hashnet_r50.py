# HashNet (Cao et al., ICCV 2017) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (hashnet.py, models/resnet.py with
# with_tanh=False): the whole ResNet-50 (torchvision's layout), global
# average pooling, one linear layer to the k bits (PyTorch's default init);
# nothing frozen, BatchNorm in train mode. Training codes tanh(scale * u)
# with the continuation scale sqrt(2 * round + pass // 15 + 1) over 30-pass
# rounds; the weighted pairwise loss (alpha 0.1) of each batch against a
# memory of the round's sample (one row per sampled image, never cleared);
# evaluation encodes the training images (no learned database). 12 bits
# here: a config for k bits sets head.code_length=k.
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
        type='ContinuationHashHead',
        code_length=12,
        in_channels=2048,
        step_passes=15),
    loss=dict(type='HashNetLoss', alpha=0.1),
    database=dict(type='CodeMemoryDatabase', rows='round'),
)
