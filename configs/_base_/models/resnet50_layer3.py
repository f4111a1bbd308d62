# ImageNet-pretrained ResNet-50's stem..layer3 (T: 1024 x 14 x 14 at 224):
# the backbone under the attention methods (A2-Net, ExchNet, SEMICON,
# DAHNet), whose necks hold their own copies of layer4 (loaded from the
# same checkpoint's layer4). Their model bases add the neck, the head, the
# loss and the database strategy.
_base_ = ['./hash_retriever_imagenet.py']

model = dict(
    # num_stages=3: no layer4 in the backbone; the neck holds its copies.
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
