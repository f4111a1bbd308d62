# FISH, Food-101, 12 bits, as aassxun/DSH_Analysis runs it (model, loss,
# label codes, optimiser and rounds: see the bases and
# configs/fish/README.md). The other code lengths inherit this file.
_base_ = [
    '../_base_/models/fish_r50.py',
    '../_base_/datasets/food101.py',
    '../_base_/schedules/fish_40rounds.py',
    '../_base_/schedules/fish_sgd.py',
    '../_base_/default_runtime.py',
]

# One logit per class of the training set.
model = dict(head=dict(num_classes=101))
# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
