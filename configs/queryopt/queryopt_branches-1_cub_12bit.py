# Table 3, N = 1: QueryOpt at 12 bits with the original queries only, no
# auxiliary branch: 12 relaxed bits in training (the same model as Table
# 2's "+S+Q" row, ./queryopt_ablation-sq_cub_12bit.py).
_base_ = ['./queryopt_cub_12bit.py']

model = dict(head=dict(relaxed_dims=12))
