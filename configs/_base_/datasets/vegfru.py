# VegFru: database = vegfru_train (29,200), queries = vegfru_test
# (116,931); vegfru_val is unused.
_base_ = ['./fine_grained_224.py']

dataset = dict(type='VegFru', data_root='data/vegfru')
# Images sampled afresh each round: 4,000, as every paper here (ADSH's
# protocol, ExchNet's setting: 2,000 for CUB, Aircraft and Food-101, 4,000
# for NABirds and VegFru).
train_dataloader = dict(dataset=dataset, sampler=dict(num_samples=4000))
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
