# swuxyj/DeepHash-pytorch's protocol (HashNet.py, DPSH.py): 150 epochs over
# the whole training set, one round each (the config's RoundSampler takes
# every image once a round: num_samples=None, epochs_per_round=1), RMSprop
# lr 1e-5 weight decay 1e-5 (PyTorch's defaults otherwise), no lr schedule;
# the best evaluation is kept. Each config sets how often it evaluates
# (HashNet every 15 epochs, DPSH every 5) and its batch (64, 128).
optim_wrapper = dict(
    optimizer=dict(type='RMSprop', lr=1e-5, weight_decay=1e-5))
train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=5)
val_cfg = dict()
test_cfg = dict()

# Its training transforms (utils/tools.py): Resize(256) (short side, as
# torchvision), RandomHorizontalFlip, RandomCrop(224). Each image is read
# once a round, so no round cache.
dhp_train_pipeline = [
    dict(type='LoadImageBGR'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='PackInputs'),
]
