# Table 3 (FGVC-Aircraft row), N = 1: QueryOpt at 12 bits with the original
# queries only, no auxiliary branch: 12 relaxed bits in training.
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=12))
