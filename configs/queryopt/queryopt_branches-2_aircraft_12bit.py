# Table 3 (FGVC-Aircraft row), N = 2: QueryOpt at 12 bits with the original
# queries and 1 circularly shifted copies (shift 384 / 2 = 192 features
# each, no new parameters): 24 relaxed bits in training.
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=24))
