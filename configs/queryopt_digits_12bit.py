# The newcomer's main job: QueryOpt on scikit-learn's bundled handwritten
# digits (real 8x8 scans, 10 classes), exported to the CUB layout by
# `python tools/export_digits.py data/digits` (fixed split: image i is a query
# when i % 5 == 0: 360 queries, 1,437 database images), at 32x32, on CPU in
# minutes. Same model and ADSH training as the paper's, scaled down: a narrow
# CIFAR-style ResNet-18 from scratch, d = 64, and a short schedule.
_base_ = [
    '_base_/schedules/adsh_sgd.py',
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
        out_indices=(2, 3)),
    neck=dict(
        type='SubtleFeatureNeck',
        in_channels=(64, 128),
        embed_dims=64,
        top_down_channels=32,
        num_heads=4,
        ffn_dims=128),
    head=dict(
        type='QueryHashHead',
        code_length=12,
        relaxed_dims=96,
        embed_dims=64,
        num_heads=4,
        ffn_dims=128),
    loss=dict(type='ADSHLoss', gamma=200.0),
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

# From scratch, the paper's SGD at lr 3e-4 (tuned for a pretrained ResNet-50
# over 150k steps) barely moves the codes in a few hundred steps (mAP stays
# near chance); AdamW gets there in minutes.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4))
# 10 rounds, lr x 0.1 from round 9, evaluated after rounds 5 and 10.
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)
default_hooks = dict(logger=dict(interval=20))
