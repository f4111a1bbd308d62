# DPSH (Li, Wang and Kang, IJCAI 2016) on ImageNet-pretrained ResNet-50, as
# swuxyj/DeepHash-pytorch runs it with net=ResNet (DPSH.py, network.py):
# the whole torchvision ResNet-50, global average pooling and a hash layer
# Linear(2048, k) initialised N(0, 0.01), bias 0, raw output (no tanh);
# nothing frozen, BatchNorm in train mode. The pairwise likelihood of each
# batch against a memory of every training image's latest output (theta =
# u U^T / 2) plus 0.1 x quantisation; evaluation encodes the training images
# (no learned database). 12 bits here: a config for k bits sets
# head.code_length=k.
_base_ = ['./resnet50_pooled.py']

model = dict(
    head=dict(
        type='LinearHashHead',
        code_length=12,
        in_channels=2048,
        activation=None,
        init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0)),
    loss=dict(type='DPSHLoss', alpha=0.1, inner_product_scale=0.5),
    database=dict(type='CodeMemoryDatabase', rows='dataset'),
)
