# FGVC-Aircraft 2013b: database = trainval (6,667), queries = test (3,333).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='FGVCAircraftHash', data_root='data/fgvc-aircraft-2013b')
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
