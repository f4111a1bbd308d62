# Table 3 (FGVC-Aircraft row), N = 6: QueryOpt at 12 bits with the original
# queries and 5 circularly shifted copies (shift 384 / 6 = 64 features
# each, no new parameters): 72 relaxed bits in training.
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=72))
