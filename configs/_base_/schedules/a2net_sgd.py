# A2-Net's optimiser. Paper: SGD, weight decay 1e-4, batch 16; learning
# rate and momentum not stated. Taken from the co-author's code
# (DSH_Analysis set_flag.py): lr 1e-4, momentum 0.9, no Nesterov. The round
# counts are in a2net_{60,70}rounds.py; batch 16 and 20 passes per round sit
# with each config's dataloader (MMEngine lets one base set it).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4))

val_cfg = dict()
test_cfg = dict()
