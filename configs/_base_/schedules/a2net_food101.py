# A2-Net's schedule for Food-101, in rounds (one epoch = one ADSH round).
# Paper ("Implementation Details"): T_max = 70 iterations and lr / 10 at 60 for
# datasets over 20k training images; 2,000 images sampled per iteration (2,000
# for CUB, Aircraft, Food-101; 4,000 for NABirds, VegFru); "the total number of
# training epochs is 20", read as passes per iteration; batch 16. Evaluation
# rounds are not in the paper: every 5th round up to the lr drop, then every
# round (the code: every val_freq rounds, then every round after its drop).
_base_ = [
    '../datasets/food101.py',
    './a2net_sgd.py',
    '../default_runtime.py',
]

train_dataloader = dict(
    batch_size=16,
    sampler=dict(num_samples=2000, epochs_per_round=20))
train_cfg = dict(
    by_epoch=True, max_epochs=70, val_interval=5,
    # Every round after the drop: MMEngine applies a milestone m already
    # after round m - 1, hence drop + 1.
    dynamic_intervals=[(60 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[60], gamma=0.1)
