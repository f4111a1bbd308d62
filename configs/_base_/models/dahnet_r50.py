# DAHNet (Jiang et al., ACM MM 2023) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (DAHNet_train.py, models/DAHNET.py; the same
# modules as the official WhiteJiang/DAHNet): stem..layer3 as the backbone
# (T: 1024 x 14 x 14); a plain layer4 copy gives the global feature; one
# FESM called three times boosts three parts step by step, layer4's first
# block takes each to 2048 x 7 x 7, MCM mixes neighbouring parts, and a
# shared [layer4.1, CFM, layer4.2] refines each; SEMICON's bare-weight head
# (k/2 global + 3 x k/6 part bits, tanh) with train-only classifiers on the
# global and the part features. 12 bits and CUB's 200 classes here: a
# config sets head.code_length and head.num_classes.
_base_ = ['./resnet50_layer3.py']

model = dict(
    neck=dict(
        type='DAHNetNeck',
        in_channels=1024,
        out_channels=2048,
        # ImageNet's layer4 where the reference loads it: all of it into
        # the global copy, layer4.0 into the part transition, layer4.1 and
        # layer4.2 around the CFM; FESM and CFM start random.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='torchvision://resnet50',
            prefix='layer4.')),
    head=dict(
        type='DAHNetHashHead', code_length=12, num_classes=200,
        in_channels=2048),
    # 1/2 CE on the global logits + 1/6 on each part's; add_classification
    # =False is the paper's DAHNet-- (CE logged, not trained).
    loss=dict(type='DAHNetLoss'),
    # The code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
