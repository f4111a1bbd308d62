# ADSH (Jiang & Li, AAAI 2018) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (adsh.py, models/resnet.py): the whole
# ResNet-50 (stride on the 3x3 convs, torchvision's layout), global average
# pooling, one linear layer to the k bits (PyTorch's default init) and tanh;
# nothing frozen, BatchNorm in train mode. 12 bits here: a config for k bits
# sets head.code_length=k.
_base_ = ['./resnet50_pooled.py']

model = dict(
    head=dict(
        type='LinearHashHead',
        code_length=12,
        in_channels=2048,
        activation='tanh'),
    loss=dict(type='ADSHLoss'),
    # The code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
