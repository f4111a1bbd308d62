# QueryOpt on the digits main job (queryopt_digits_12bit.py) under
# DSH_Analysis's seen/unseen protocol (docs/seen_unseen.md): the last 20 %
# of the classes (digits 8 and 9) are held out of training. It trains on
# the 8 seen digits' database images, evaluates their test images against
# the learned database (seen@seen, the best checkpoint's key), and encodes
# the unseen digits' test and database images for seen@all, unseen@unseen
# and unseen@all. These lines switch any method's config to the protocol
# (an encoded-database method also sets the ratio in its
# RetrievalDatabaseHook's loader, see the docs).
_base_ = ['./queryopt_digits_12bit.py']

unseen_ratio = 0.2
train_dataloader = dict(dataset=dict(unseen_ratio=unseen_ratio))
val_dataloader = dict(dataset=dict(unseen_ratio=unseen_ratio))
test_dataloader = val_dataloader
val_evaluator = dict(type='SeenUnseenMAP')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='seen@seen/mAP'))
