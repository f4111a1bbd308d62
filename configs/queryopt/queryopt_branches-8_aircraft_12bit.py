# Table 3 (FGVC-Aircraft row), N = 8: the paper's choice N = 96 / k at 12
# bits, i.e. ./queryopt_aircraft_12bit.py itself (96 relaxed bits).
_base_ = ['./queryopt_aircraft_12bit.py']

model = dict(head=dict(relaxed_dims=96))
