_base_ = ['./fish_aircraft_12bit.py']

model = dict(head=dict(code_length=32))
