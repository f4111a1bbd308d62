# VegFru: database = vegfru_train (29,200), queries = vegfru_test
# (116,931); vegfru_val is unused.
_base_ = ['./fine_grained_224.py']

dataset = dict(type='VegFru', data_root='data/vegfru')
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
