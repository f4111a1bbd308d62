# The QueryOpt authors' rounds for NABirds and VegFru (30 passes a round):
# 50 rounds (one epoch = one round), lr x 0.1 after round 30, test after
# every 5th round up to round 40, then after every round: the authors'
# evaluation step is 40 here, although their lr drops at round 30.
_base_ = ['./adsh_sgd.py']

train_cfg = dict(
    by_epoch=True, max_epochs=50, val_interval=5,
    # Every round after round step: MMEngine applies a milestone m already
    # after round m - 1, hence step + 1.
    dynamic_intervals=[(40 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1)
