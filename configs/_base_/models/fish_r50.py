# FISH on ImageNet-pretrained ResNet-50, as aassxun/DSH_Analysis runs it
# (fish.py, models/fish.py, utils/fish_tools.py): the whole torchvision
# ResNet-50, the feature filter on layer4 (positions above the mean channel
# sum at full weight, the rest halved) with average pooling, class logits,
# the hash layer on the logits with the non-predicted classes x 0.7, no
# tanh; CE on the image and on its peak-erased copy plus the codes' squared
# error to fixed label codes, which evaluation ranks the queries against.
# 12 bits and CUB's 200 classes here: a config sets head.code_length and
# head.num_classes.
_base_ = ['./resnet50_pooled.py']

model = dict(
    # The filter replaces the plain average pooling.
    neck=dict(type='FeatureFilterNeck'),
    head=dict(
        type='ClassMaskedHashHead',
        code_length=12,
        num_classes=200,
        in_channels=2048,
        class_mask_rate=0.7),
    loss=dict(type='FishLoss', threshold_range=(0.9, 1.0)),
    # The label codes: 15 passes, sigma 1, delta 1e-4 (fish_tools.py).
    database=dict(type='LabelCodeDatabase', iterations=15, sigma=1.0,
                  delta=1e-4),
)
