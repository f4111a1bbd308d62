# CUB-200-2011: database = train (5,994), queries = test (5,794).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='CUB200', data_root='data/CUB_200_2011')
# Images sampled afresh each round: 2,000, as every paper here (ADSH's
# protocol, ExchNet's setting: 2,000 for CUB, Aircraft and Food-101, 4,000
# for NABirds and VegFru).
train_dataloader = dict(dataset=dataset, sampler=dict(num_samples=2000))
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
