# The AGMH authors' rounds for Food-101, NABirds and VegFru: 50 rounds (one
# epoch = one round), test after every round (as the authors); lr x 0.1 from
# round 41 (agmh_sgd.py: milestone 40).
_base_ = ['./agmh_sgd.py']

# Evaluated after every round; the best test mAP is kept.
train_cfg = dict(by_epoch=True, val_interval=1, max_epochs=50)
