# QueryOpt, Food-101, 12 bits: the paper's model and the authors' recipe.
# The other code lengths inherit this file.
_base_ = [
    '../_base_/models/queryopt_r50.py',
    '../_base_/datasets/food101.py',
    '../_base_/schedules/adsh_120rounds.py',
    '../_base_/default_runtime.py',
]

# The authors' passes per round on Food-101.
train_dataloader = dict(sampler=dict(epochs_per_round=10))
model = dict(head=dict(code_length=12))
