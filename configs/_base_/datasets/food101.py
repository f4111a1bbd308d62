# Food-101: database = train (75,750), queries = test (25,250).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='Food101Hash', data_root='data/food-101')
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
