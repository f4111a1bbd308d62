# NABirds: database = train (23,929), queries = test (24,633).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='NABirds', data_root='data/nabirds')
# Images sampled afresh each round: 4,000, as every paper here (ADSH's
# protocol, ExchNet's setting: 2,000 for CUB, Aircraft and Food-101, 4,000
# for NABirds and VegFru).
train_dataloader = dict(dataset=dataset, sampler=dict(num_samples=4000))
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
