_base_ = ['./semicon_aircraft_12bit.py']

model = dict(head=dict(code_length=24))
