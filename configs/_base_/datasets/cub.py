# CUB-200-2011: database = train (5,994), queries = test (5,794).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='CUB200', data_root='data/CUB_200_2011')
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
