# AGMH (ACM MM 2023) on ImageNet-pretrained ResNet-50 with a stride-1 last
# stage (2048 x 14 x 14 at 224): six descriptor branches (512 channels) with
# one SIEA block each, codes from the pooled descriptors (SIEA only feeds the
# dispersion loss and is skipped at inference), ADSH with the soft similarity
# plus ADL (weight 0.5). Every layer trains, as the authors' do.
# The authors load torchvision's ImageNet V1 weights by their older file,
# resnet50-19c8e357.pth; torchvision://resnet50 resolves to
# resnet50-0676ba61.pth, torchvision's current IMAGENET1K_V1 entry (the V1
# recipe, 76.13% top-1; V2 is resnet50.imagenet1k_v2). Their exact file:
# init_cfg.checkpoint=https://download.pytorch.org/models/resnet50-19c8e357.pth
_base_ = ['./hash_retriever_imagenet.py']

model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        strides=(1, 2, 2, 1),
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='AttributeDescriptorNeck',
        in_channels=2048,
        descriptor_channels=512,
        num_descriptors=6,
        num_heads=4,
        memory_units=128),
    head=dict(
        type='AGMHHashHead',
        code_length=12,
        in_channels=512,
        num_descriptors=6),
    loss=dict(
        type='AGMHLoss',
        adl=dict(type='AttentionDispersionLoss', loss_weight=0.5)),
    # The AGMH code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
