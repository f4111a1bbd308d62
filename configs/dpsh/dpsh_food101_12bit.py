# DPSH, Food-101, 12 bits, in the efficient training setting (the rounds of
# aassxun/DSH_Analysis; model and loss: swuxyj/DeepHash-pytorch; see the
# bases and configs/dpsh/README.md). The other code lengths inherit this
# file.
_base_ = [
    '../_base_/models/dpsh_r50.py',
    '../_base_/datasets/food101.py',
    '../_base_/schedules/dsh_40rounds.py',
    '../_base_/schedules/dpsh_sgd.py',
    '../_base_/default_runtime.py',
]

# DSH_Analysis: batch 16, 30 epochs over each iteration's sample (passes
# per round).
train_dataloader = dict(batch_size=16, sampler=dict(epochs_per_round=30))
# No learned database: evaluation encodes the training split, read like
# the queries.
custom_hooks = [
    dict(hook, source='encoded', dataloader=dict(
        _base_.test_dataloader,
        dataset=dict(_base_.train_dataloader.dataset,
                     pipeline=_base_.test_pipeline)))
    if hook['type'] == 'RetrievalDatabaseHook' else hook
    for hook in _base_.custom_hooks
]
