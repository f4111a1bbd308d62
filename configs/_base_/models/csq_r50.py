# CSQ (Yuan et al., CVPR 2020) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (csq.py: models/resnet.py resnet50 with a
# tanh output, the same network as its ADSH): the whole ResNet-50, global
# average pooling, one linear layer to the k bits (PyTorch's default init),
# tanh; codes pulled to their class's hash centre (binary cross-entropy)
# plus 0.1 x the quantisation term; evaluation encodes the training images
# (no learned database). 12 bits and CUB's 200 classes here: a config sets
# head.code_length, loss.code_length and loss.num_classes.
_base_ = ['./resnet50_pooled.py']

model = dict(
    head=dict(
        type='LinearHashHead',
        code_length=12,
        in_channels=2048,
        activation='tanh'),
    loss=dict(type='CSQLoss', num_classes=200, code_length=12, lambd=0.1),
    database=dict(type='EncodedDatabase'),
)
