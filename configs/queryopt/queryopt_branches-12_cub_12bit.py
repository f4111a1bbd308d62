# Table 3, N = 12: QueryOpt at 12 bits with the original queries and
# 11 circularly shifted copies (shift 384 / 12 = 32 features each, no new
# parameters): 144 relaxed bits in training. The paper's choice is N = 96 / k
# = 8 (./queryopt_cub_12bit.py).
_base_ = ['./queryopt_cub_12bit.py']

model = dict(head=dict(relaxed_dims=144))
