# Table 2, row "+S+Q": QueryOpt without the auxiliary branches (A). The
# queries are decoded once in training as at inference: relaxed_dims = k,
# one branch (Table 3's N = 1), so B and the loss are k wide. Everything
# else is ./queryopt_ablation-sqa_cub_12bit.py (= ./queryopt_cub_12bit.py).
_base_ = ['./queryopt_ablation-sqa_cub_12bit.py']

model = dict(head=dict(relaxed_dims=12))
