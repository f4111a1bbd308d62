# A2-Net's rounds for datasets under 20k training images (CUB-200-2011,
# FGVC-Aircraft).
# Paper ("Implementation Details"): T_max = 60 iterations (rounds; one epoch =
# one round) and lr / 10 at 50. Evaluation rounds are not in the paper: every
# 5th round up to the lr drop, then every round (the code: every val_freq
# rounds, then every round after its drop).
_base_ = ['./a2net_sgd.py']

train_cfg = dict(
    by_epoch=True, max_epochs=60, val_interval=5,
    # Every round after the drop: MMEngine applies a milestone m already
    # after round m - 1, hence drop + 1.
    dynamic_intervals=[(50 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[50], gamma=0.1)
