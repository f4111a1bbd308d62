# Table 3 (FGVC-Aircraft row), N = 12: QueryOpt at 12 bits with the original
# queries and 11 circularly shifted copies (shift 384 / 12 = 32 features
# each, no new parameters): 144 relaxed bits in training.
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=144))
