# Loaders and transforms shared by the five fine-grained datasets (the
# authors' 224x224 protocol): database = split 'train', queries = 'test'.
# Each dataset's base sets the dataset type and data_root; the round
# sampler's sizes come from the dataset's schedule.

train_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='RoundSampler'),
    dataset=dict(
        split='train',
        pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        split='test',
        pipeline=test_pipeline),
)
val_evaluator = dict(type='HammingMAP')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
