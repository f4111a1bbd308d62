# HashNet, Food-101, 12 bits, in the efficient training setting as
# aassxun/DSH_Analysis runs it (model, loss, optimiser and rounds: see the
# bases and configs/hashnet/README.md). The other code lengths inherit this
# file.
_base_ = [
    '../_base_/models/hashnet_r50.py',
    '../_base_/datasets/food101.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/hashnet_sgd.py',
    '../_base_/default_runtime.py',
]

# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
