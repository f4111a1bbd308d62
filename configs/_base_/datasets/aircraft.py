# FGVC-Aircraft 2013b: database = trainval (6,667), queries = test (3,333).
_base_ = ['./fine_grained_224.py']

dataset = dict(type='FGVCAircraftHash', data_root='data/fgvc-aircraft-2013b')
# Images sampled afresh each round: 2,000, as every paper here (ADSH's
# protocol, ExchNet's setting: 2,000 for CUB, Aircraft and Food-101, 4,000
# for NABirds and VegFru).
train_dataloader = dict(dataset=dataset, sampler=dict(num_samples=2000))
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
