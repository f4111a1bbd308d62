# HashNet, CUB-200-2011, 12 bits, in swuxyj/DeepHash-pytorch's protocol
# (HashNet.py at HEAD with net=ResNet): 150 epochs over the whole training
# set, batch 64, RMSprop, its transforms, evaluated every 15 epochs; each
# batch paired with itself (no memory), the continuation scale
# sqrt(epoch // 20 + 1), the hash layer initialised N(0, 0.01). The
# efficient-setting config is hashnet_cub_12bit.py.
_base_ = [
    '../_base_/models/hashnet_r50.py',
    '../_base_/datasets/cub.py',
    '../_base_/schedules/dhp_150epochs.py',
    '../_base_/default_runtime.py',
]

model = dict(
    head=dict(
        step_passes=20,
        init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0)),
    database=dict(rows='batch'))
# One round = one epoch over every training image.
train_dataloader = dict(
    batch_size=64,
    sampler=dict(num_samples=None, epochs_per_round=1),
    dataset=dict(pipeline=_base_.dhp_train_pipeline))
train_cfg = dict(val_interval=15)
