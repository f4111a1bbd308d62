_base_ = ['./queryopt_ablation-sq_cub_12bit.py']

# One branch: the relaxed width is the code length.
model = dict(head=dict(code_length=48, relaxed_dims=48))
