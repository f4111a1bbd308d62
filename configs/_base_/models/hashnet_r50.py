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
_base_ = ['./resnet50_pooled.py']

model = dict(
    head=dict(
        type='ContinuationHashHead',
        code_length=12,
        in_channels=2048,
        step_passes=15),
    loss=dict(type='HashNetLoss', alpha=0.1),
    database=dict(type='CodeMemoryDatabase', rows='round'),
)
