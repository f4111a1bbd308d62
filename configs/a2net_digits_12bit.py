# A2-Net on the digits main job (see configs/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same method as the ResNet-50
# configs, scaled down: a narrow CIFAR-style ResNet-18 from scratch, its
# stem..stage 3 as the backbone (64 x 8 x 8), 12 attention maps, local and
# global copies of a one-block stage 4 (a basic block to 64 x 4 x 4: the
# local path runs 12x per image, so it is kept narrow for CPU), tied W
# (12 x 13 * 64), the code's loss with the switch at half the rounds.
_base_ = [
    '_base_/schedules/a2net_sgd.py',
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
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, )),
    neck=dict(
        type='AttributeAttentionNeck',
        num_attentions=12,
        in_channels=64,
        out_channels=64,
        refiner_block='BasicBlock',
        num_refiner_blocks=1),
    head=dict(
        type='TiedAutoencoderHashHead', code_length=12,
        in_channels=13 * 64),
    loss=dict(
        type='A2NetLoss',
        gamma=200.0,
        similarity='soft',
        switch_round=5,
        decorr_batch_size=16),
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

# From scratch, the code's SGD at lr 1e-4 (tuned for a pretrained ResNet-50)
# barely moves the codes in a few hundred steps; AdamW, as in QueryOpt's
# digits config.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4))
# 10 rounds, lr x 0.1 from round 9, evaluated after rounds 5 and 10.
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)
default_hooks = dict(logger=dict(interval=20))
