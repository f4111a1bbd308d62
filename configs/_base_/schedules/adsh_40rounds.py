# The QueryOpt authors' rounds for CUB-200-2011 and FGVC-Aircraft (30
# passes a round): 40 rounds (one epoch = one round), lr x 0.1 after round
# 30, test after every 5th round up to round 30, then after every round
# (the authors' evaluation rounds).
_base_ = ['./adsh_sgd.py']

train_cfg = dict(
    by_epoch=True, max_epochs=40, val_interval=5,
    # Every round after round step: MMEngine applies a milestone m already
    # after round m - 1, hence step + 1.
    dynamic_intervals=[(30 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1)
