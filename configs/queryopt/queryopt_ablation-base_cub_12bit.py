# Table 2, first row: the base network, ImageNet ResNet-50 with ADSH (global
# average pooling of C4, one linear layer 2048 -> k, tanh), trained with
# QueryOpt's recipe (rounds, optimiser, binary similarity, frozen stem and
# layer1) so that the rows differ only in their parts. Everything else is
# ./queryopt_ablation-s_cub_12bit.py with the subtle feature extractor (S)
# switched off. ../adsh/adsh_cub_12bit.py is ADSH as aassxun/DSH_Analysis
# trains it (the run the paper's 20.03 comes from).
_base_ = ['./queryopt_ablation-s_cub_12bit.py']

model = dict(
    backbone=dict(out_indices=(3, )),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=2048, type='LinearHashHead'))
