# The whole ImageNet-pretrained ResNet-50 (torchvision's layout: stride on
# the 3x3 convolutions; nothing frozen, BatchNorm in train mode) and global
# average pooling: the network under the methods with one hash layer
# (ADSH, HashNet, DPSH, CSQ), whose model bases add the head, the loss and
# the database strategy.
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
)
