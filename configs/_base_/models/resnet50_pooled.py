# The whole ImageNet-pretrained ResNet-50 (torchvision's layout: stride on
# the 3x3 convolutions; nothing frozen, BatchNorm in train mode) and global
# average pooling: the network under the methods with one hash layer
# (ADSH, HashNet, DPSH, CSQ), whose model bases add the head, the loss and
# the database strategy.
_base_ = ['./hash_retriever_imagenet.py']

model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='GlobalAveragePooling'),
)
