# Table 2, "+S+Q" on the digits: no auxiliary branches (relaxed_dims = k).
_base_ = ['./queryopt_ablation-sqa_digits_12bit.py']

model = dict(head=dict(relaxed_dims=12))
