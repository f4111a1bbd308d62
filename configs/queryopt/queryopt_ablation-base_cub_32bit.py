_base_ = ['./queryopt_ablation-base_cub_12bit.py']

model = dict(head=dict(code_length=32))
