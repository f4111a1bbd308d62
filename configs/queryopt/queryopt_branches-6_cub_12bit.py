# Table 3, N = 6: QueryOpt at 12 bits with the original queries and
# 5 circularly shifted copies (shift 384 / 6 = 64 features each, no new
# parameters): 72 relaxed bits in training. The paper's choice is N = 96 / k
# = 8 (./queryopt_cub_12bit.py).
_base_ = ['./queryopt_cub_12bit.py']

model = dict(head=dict(relaxed_dims=72))
