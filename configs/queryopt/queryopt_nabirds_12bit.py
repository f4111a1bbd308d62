# QueryOpt, NABirds, 12 bits: the paper's model and the authors' recipe.
# The other code lengths inherit this file.
_base_ = [
    '../_base_/models/queryopt_r50.py',
    '../_base_/datasets/nabirds.py',
    '../_base_/schedules/adsh_50rounds.py',
    '../_base_/default_runtime.py',
]

# The authors' passes per round on NABirds.
train_dataloader = dict(sampler=dict(epochs_per_round=30))
model = dict(head=dict(code_length=12))
