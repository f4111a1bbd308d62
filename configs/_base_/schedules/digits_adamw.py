# The digits jobs' schedule: 10 rounds, lr x 0.1 from round 9, evaluated
# after rounds 5 and 10. From scratch, the papers' SGD (lr 1e-4 to 1e-3,
# tuned for a pretrained ResNet-50 over tens of thousands of steps) barely
# moves the codes in a few hundred steps (mAP stays near chance); AdamW gets
# there in minutes.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)
val_cfg = dict()
test_cfg = dict()
