# Table 3 (FGVC-Aircraft row), N = 4: QueryOpt at 12 bits with the original
# queries and 3 circularly shifted copies (shift 384 / 4 = 96 features
# each, no new parameters): 48 relaxed bits in training.
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=48))
