# DPSH, VegFru, 12 bits, in the efficient training setting (the rounds of
# aassxun/DSH_Analysis; model and loss: swuxyj/DeepHash-pytorch; see the
# bases and configs/dpsh/README.md). The other code lengths inherit this
# file.
_base_ = [
    '../_base_/models/dpsh_r50.py',
    '../_base_/datasets/vegfru.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/dpsh_sgd.py',
    '../_base_/default_runtime.py',
]

# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
