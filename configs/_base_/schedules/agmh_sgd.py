# The AGMH authors' optimiser (AGMH_train.py, run.py): SGD with Nesterov
# momentum (forced on by their trainer), lr 1e-3, weight decay 1e-4, every
# parameter; lr x 0.1 at round 40 (MultiStepLR stepped once per round).
# The round counts are in agmh_{40,50}rounds.py; batch 32 and 30 passes per
# round sit with each config's dataloader (MMEngine lets one base set it).
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[40], gamma=0.1)
val_cfg = dict()
test_cfg = dict()
