# ExchNet, VegFru, 12 bits, as aassxun/DSH_Analysis runs it (model, loss,
# optimiser and rounds: see the bases and configs/exchnet/README.md). The
# other code lengths inherit this file.
_base_ = [
    '../_base_/models/exchnet_r50.py',
    '../_base_/datasets/vegfru.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/exchnet_sgd.py',
    '../_base_/default_runtime.py',
]

# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
# The class anchors: part-feature means of the training images (test
# pipeline) after every round from model.neck.exchange_round - 1 on.
custom_hooks = _base_.custom_hooks + [dict(type='ClassAnchorHook')]
