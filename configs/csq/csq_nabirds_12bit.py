# CSQ, NABirds, 12 bits, as aassxun/DSH_Analysis runs it (model, loss,
# optimiser and rounds: see the bases and configs/csq/README.md). The other
# code lengths inherit this file.
_base_ = [
    '../_base_/models/csq_r50.py',
    '../_base_/datasets/nabirds.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/csq_sgd.py',
    '../_base_/default_runtime.py',
]

# One hash centre per class of the training set.
model = dict(loss=dict(num_classes=555))
# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
