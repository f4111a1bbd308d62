_base_ = ['./dahnet_aircraft_12bit.py']

model = dict(head=dict(code_length=24))
