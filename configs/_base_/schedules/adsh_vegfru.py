# The authors' schedule for VegFru: 50 rounds of
# 30 epochs over 4,000 images sampled per round, lr x 0.1 from round
# 30, test every 5 rounds, then every round after the drop.
_base_ = [
    '../datasets/vegfru.py',
    './adsh_sgd.py',
    '../default_runtime.py',
]

rounds = 50
epochs_per_round = 30
num_samples = 4000
lr_drop_round = 30

train_dataloader = dict(
    sampler=dict(num_samples=num_samples, epochs_per_round=epochs_per_round))
train_cfg = dict(
    by_epoch=True,
    max_epochs=rounds * epochs_per_round,
    val_interval=5 * epochs_per_round,
    dynamic_intervals=[(lr_drop_round * epochs_per_round, epochs_per_round)])
param_scheduler = dict(
    type='MultiStepLR',
    by_epoch=True,
    milestones=[lr_drop_round * epochs_per_round],
    gamma=0.1)
# One checkpoint a round: an epoch here is only num_samples images.
default_hooks = dict(checkpoint=dict(interval=epochs_per_round))
