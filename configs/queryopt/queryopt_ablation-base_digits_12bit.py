# Table 2's base row on the digits: the digits' ResNet-18 with ADSH (global
# average pooling of its last map, 128 channels, one linear layer, tanh),
# trained as the other digits rows; no subtle feature extractor (S).
_base_ = ['./queryopt_ablation-s_digits_12bit.py']

model = dict(
    backbone=dict(out_indices=(3, )),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=128, type='LinearHashHead'))
