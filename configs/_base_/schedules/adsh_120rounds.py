# The QueryOpt authors' rounds for Food-101 (10 passes a round): 120 rounds
# (one epoch = one round), lr x 0.1 after round 90, test after every 5th
# round up to round 90, then after every round (the authors' evaluation
# rounds).
_base_ = ['./adsh_sgd.py']

train_cfg = dict(
    by_epoch=True, max_epochs=120, val_interval=5,
    # Every round after round step: MMEngine applies a milestone m already
    # after round m - 1, hence step + 1.
    dynamic_intervals=[(90 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[90], gamma=0.1)
