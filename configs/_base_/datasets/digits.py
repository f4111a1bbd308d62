# scikit-learn's bundled handwritten digits (real 8x8 scans, 10 classes),
# exported to the CUB layout by `python tools/export_digits.py data/digits`
# (fixed split: image i is a query when i % 5 == 0: 360 queries, 1,437
# database images), read at 32x32: every method's CPU-sized main job.
data_root = 'data/digits'

# Grey levels to [-1, 1]. A config takes it into its model
# (model = dict(data_preprocessor=_base_.data_preprocessor)): the method's
# model base, a sibling base, sets ImageNet's statistics there.
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)

# The network every method is scaled down to here, trained from scratch: a
# narrow CIFAR-style ResNet-18. A config takes it into its model with the
# stages it reads: backbone=dict(_delete_=True, **_base_.cifar_resnet18,
# out_indices=(3, )).
cifar_resnet18 = dict(
    type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16)

train_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.7, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [
    # Scoped: MMPretrain's inferencers build this pipeline in MMPretrain's
    # registry, where only the prefixed name finds ours.
    dict(type='mmqueryopt.LoadImageBGR'),
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
