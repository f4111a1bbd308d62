# The rounds of aassxun/DSH_Analysis (set_flag.py), the study code that runs
# ADSH, ExchNet, SEMICON, HashNet, FISH, DAHNet and CSQ under one ADSH-style
# loop, and A2-Net's "efficient training setting": 40 rounds (one epoch =
# one round of 30 passes over the round's sample), MultiStepLR stepped once
# per round with lr x 0.1 after round 35, evaluated after every 5th round up
# to round 35, then after every round (`it < 35 and (it+1) % 5 == 0 or
# it >= 35`); the best evaluation is kept. Each method's optimiser is its
# own base (<method>_sgd.py).
train_cfg = dict(
    by_epoch=True, max_epochs=40, val_interval=5,
    # Every round after round 35: MMEngine applies a milestone m already
    # after round m - 1, hence 35 + 1.
    dynamic_intervals=[(35 + 1, 1)])
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[35], gamma=0.1)
val_cfg = dict()
test_cfg = dict()
