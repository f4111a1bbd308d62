# The authors' schedule for FGVC-Aircraft, in rounds (one epoch = one round):
# 40 rounds, each 30 passes over 2,000 images sampled anew, lr x 0.1 after
# round 30, test after every 5th round up to round 30, then after every round
# (the authors' evaluation rounds).
_base_ = [
    '../datasets/aircraft.py',
    './adsh_sgd.py',
    '../default_runtime.py',
]

train_dataloader = dict(
    sampler=dict(num_samples=2000, epochs_per_round=30))
train_cfg = dict(
    by_epoch=True, max_epochs=40, val_interval=5,
    # Every round after round step: MMEngine applies a milestone m already
    # after round m - 1, hence step + 1.
    dynamic_intervals=[(30 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1)
