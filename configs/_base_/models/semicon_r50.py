# SEMICON (Shen et al., ECCV 2022) on ImageNet-pretrained ResNet-50, as
# aassxun/DSH_Analysis runs it (SEMICON_train.py, models/SEMICON.py; the
# same module as the official aassxun/SEMICON): stem..layer3 as the backbone
# (T: 1024 x 14 x 14); the suppression-enhancing tower finds three part maps
# step by step; a global and a shared local layer4 copy, each with two
# channel transformers, refine T and the three attended maps; bare weights
# W_G (k/2 rows) and W_L1..3 (k/6 rows each), tanh codes. 12 bits here: a
# config for k bits sets head.code_length=k.
_base_ = ['./resnet50_layer3.py']

model = dict(
    neck=dict(
        type='SuppressionEnhancingNeck',
        in_channels=1024,
        out_channels=2048,
        # The reference: mask statistics over the whole batch (an image's
        # codes depend on its batch-mates, in evaluation too); 'image' for
        # a model that gives each image its own code whatever the batch.
        mask_statistics='batch',
        mask_exponent=0.15,
        # The reference's strict=False load: layer4.0 and layer4.1 into
        # each copy; the third bottleneck and the channel transformers
        # start random. True also loads layer4.2 into the third bottleneck.
        load_third_block=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='torchvision://resnet50',
            prefix='layer4.')),
    head=dict(type='GlobalLocalHashHead', code_length=12, in_channels=2048),
    loss=dict(type='ADSHLoss'),
    # The code's ADSH database: soft similarity (+1 / -P/N), gamma 200.
    database=dict(type='ADSHDatabase', gamma=200.0, similarity='soft'),
)
