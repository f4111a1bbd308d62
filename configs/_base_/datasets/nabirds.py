# NABirds: database = train (23,929), queries = test (24,633).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='NABirds', data_root='data/nabirds')
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
