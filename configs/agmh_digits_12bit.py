# AGMH on scikit-learn's bundled handwritten digits (real 8x8 scans, 10
# classes), exported to the CUB layout by
# `python tools/export_digits.py data/digits` (image i is a query when
# i % 5 == 0: 360 queries, 1,437 database images), at 32x32, on CPU in
# minutes. Same model and training as the paper's (descriptor branches with
# SIEA, ADSH with the soft similarity plus ADL at 0.5), scaled down: a narrow
# CIFAR-style ResNet-18 from scratch with the last stage at stride 1 (8x8
# maps, as ResNet-50's stride-1 layer4 keeps 14x14), six descriptors of 32
# channels, SIEA with 16 memory rows, and a short schedule.
_base_ = [
    '_base_/schedules/agmh_sgd.py',
    '_base_/default_runtime.py',
]

data_root = 'data/digits'

model = dict(
    type='HashRetriever',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        strides=(1, 2, 2, 1),
        out_indices=(3, )),
    neck=dict(
        type='AttributeDescriptorNeck',
        in_channels=128,
        descriptor_channels=32,
        num_descriptors=6,
        num_heads=4,
        memory_units=16),
    head=dict(
        type='AGMHHashHead',
        code_length=12,
        in_channels=32,
        num_descriptors=6),
    loss=dict(
        type='AGMHLoss',
        gamma=200.0,
        similarity='soft',
        adl=dict(type='AttentionDispersionLoss', loss_weight=0.5)),
)

train_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.7, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='PackInputs'),
]
# The digits borrow CUB's layout, not its official split sizes.
dataset = dict(type='CUB200', data_root=data_root, warn_size=False)
train_dataloader = dict(
    # 16, not the authors' 32: twice the steps per round on 1,000 images.
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    # One epoch = one ADSH round: 3 passes over 1,000 sampled images.
    sampler=dict(type='RoundSampler', num_samples=1000, epochs_per_round=3),
    batch_sampler=dict(type='RoundBatchSampler'),
    worker_init_fn=dict(type='mmqueryopt.epoch_worker_init_fn'),
    dataset=dict(**dataset, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='HammingMAP')
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# From scratch, the authors' SGD at lr 1e-3 (tuned for a pretrained
# ResNet-50 over 36k steps) barely moves the codes in a few hundred steps;
# AdamW gets there in minutes.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4))
# 10 rounds, lr x 0.1 from round 9, evaluated after every round as the
# authors do.
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)
default_hooks = dict(logger=dict(interval=20))
