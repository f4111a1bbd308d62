# The AGMH authors' rounds for CUB-200-2011 and FGVC-Aircraft: 40 rounds
# (one epoch = one round), test after every round (as the authors); the lr
# milestone 40 (agmh_sgd.py) never fires: the authors keep lr_step 40 for 40
# rounds.
_base_ = ['./agmh_sgd.py']

# Evaluated after every round; the best test mAP is kept.
train_cfg = dict(by_epoch=True, val_interval=1, max_epochs=40)
