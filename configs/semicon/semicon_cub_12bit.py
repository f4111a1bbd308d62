# SEMICON, CUB-200-2011, 12 bits, as aassxun/DSH_Analysis runs it (model, loss,
# optimiser and rounds: see the bases and configs/semicon/README.md). The
# other code lengths inherit this file.
_base_ = [
    '../_base_/models/semicon_r50.py',
    '../_base_/datasets/cub.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/semicon_sgd.py',
    '../_base_/default_runtime.py',
]

# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
# The reference encodes queries in unshuffled batches of 16, and the masks
# use the batch's statistics: the same batches give the same codes.
val_dataloader = dict(batch_size=16)
test_dataloader = val_dataloader
