# QueryOpt on a folder of your own photos, 12 bits: ImageNet-pretrained
# ResNet-50 at 224x224 (the paper's model and transforms).
#
# Layout (ClassFolders: MMPretrain's CustomDataset conventions, one subfolder
# per class; jpg, jpeg, png, ppm, bmp, pgm, tif):
#
#   data/custom/train/<class>/*.jpg   database: ADSH trains on these
#   data/custom/test/<class>/*.jpg    queries: evaluated against train/
#
# Class ids are the class names' positions in the sorted union of train/'s
# and test/'s class folders, so a class missing from one split shifts no
# other class's id (CustomDataset alone numbers each split on its own).
# Point the config at another folder with
#   --cfg-options train_dataloader.dataset.data_root=DIR \
#                 val_dataloader.dataset.data_root=DIR \
#                 test_dataloader.dataset.data_root=DIR
# The schedule is a starting point, not tuned: every training image once
# per pass, 10 passes per round, 20 rounds, lr x 0.1 from round 16.
_base_ = [
    '../_base_/models/queryopt_r50.py',
    '../_base_/datasets/fine_grained_224.py',
    '../_base_/schedules/adsh_sgd.py',
    '../_base_/default_runtime.py',
]

data_root = 'data/custom'

model = dict(head=dict(code_length=12))

dataset = dict(_delete_=True, type='ClassFolders', data_root=data_root)
train_dataloader = dict(
    # num_samples unset: each round samples the whole training folder; set
    # it (e.g. 2000, as for CUB) when the folder is large.
    sampler=dict(epochs_per_round=10),
    dataset=dict(
        **dataset, split='train',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        **dataset, split='test', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[15], gamma=0.1)
