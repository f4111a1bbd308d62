# Table 3, N = 8: the paper's choice N = 96 / k at 12 bits, i.e.
# ./queryopt_cub_12bit.py itself (96 relaxed bits: the original queries and
# 7 circularly shifted copies, shift 384 / 8 = 48 features each).
_base_ = ['./queryopt_cub_12bit.py']

model = dict(head=dict(relaxed_dims=96))
