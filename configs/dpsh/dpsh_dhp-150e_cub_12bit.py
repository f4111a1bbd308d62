# DPSH, CUB-200-2011, 12 bits, in swuxyj/DeepHash-pytorch's protocol
# (DPSH.py with net=ResNet): 150 epochs over the whole training set, batch
# 128, RMSprop, its transforms, evaluated every 5 epochs; the code memory
# over the whole training set (the model base). The efficient-setting
# config is dpsh_cub_12bit.py.
_base_ = [
    '../_base_/models/dpsh_r50.py',
    '../_base_/datasets/cub.py',
    '../_base_/schedules/dhp_150epochs.py',
    '../_base_/default_runtime.py',
]

# One round = one epoch over every training image.
train_dataloader = dict(
    batch_size=128,
    sampler=dict(num_samples=None, epochs_per_round=1),
    dataset=dict(pipeline=_base_.dhp_train_pipeline))
train_cfg = dict(val_interval=5)
