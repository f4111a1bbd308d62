# The authors' schedule for VegFru, in rounds (one epoch = one round): 50
# rounds, each 30 passes over 4,000 images sampled anew, lr x 0.1 after round
# 30, test after every 5th round up to round 40, then after every round: the
# authors' step is 40 here, although their lr drops at round 30.
_base_ = [
    '../datasets/vegfru.py',
    './adsh_sgd.py',
    '../default_runtime.py',
]

train_dataloader = dict(
    sampler=dict(num_samples=4000, epochs_per_round=30))
train_cfg = dict(
    by_epoch=True, max_epochs=50, val_interval=5,
    # Every round after round step: MMEngine applies a milestone m already
    # after round m - 1, hence step + 1.
    dynamic_intervals=[(40 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1)
