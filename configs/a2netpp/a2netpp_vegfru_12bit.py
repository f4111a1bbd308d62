# A2-Net++ (TPAMI 2023), VegFru, 12 bits: A2-Net plus the image
# reconstruction path, RECONSTRUCTED FROM CODE
# (../_base_/models/a2netpp_r50.py).
# Schedule: A2-Net's (A2-Net++'s unknown).
# The other code lengths inherit this file.
_base_ = [
    '../_base_/models/a2netpp_r50.py',
    '../_base_/datasets/vegfru.py',
    '../_base_/schedules/a2net_70rounds.py',
    '../_base_/default_runtime.py',
]

# The paper: batch 16, "the total number of training epochs is 20", read
# as passes per round.
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=20))
