# A2-Net, NABirds, 12 bits. Architecture, loss and optimiser: the
# co-author's code; schedule: the paper (see the bases and docs/a2net.md).
# The other code lengths inherit this file.
_base_ = [
    '../_base_/models/a2net_r50.py',
    '../_base_/datasets/nabirds.py',
    '../_base_/schedules/a2net_70rounds.py',
    '../_base_/default_runtime.py',
]

# The paper: batch 16, "the total number of training epochs is 20", read
# as passes per round.
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=20))
