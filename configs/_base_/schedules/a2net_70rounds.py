# A2-Net's rounds for datasets over 20k training images (Food-101, NABirds,
# VegFru).
# Paper ("Implementation Details"): T_max = 70 iterations (rounds; one epoch =
# one round) and lr / 10 at 60. Evaluation rounds are not in the paper: every
# 5th round up to the lr drop, then every round (the code: every val_freq
# rounds, then every round after its drop).
_base_ = ['./a2net_sgd.py']

train_cfg = dict(
    by_epoch=True, max_epochs=70, val_interval=5,
    # Every round after the drop: MMEngine applies a milestone m already
    # after round m - 1, hence drop + 1.
    dynamic_intervals=[(60 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[60], gamma=0.1)
