_base_ = ['./dpsh_aircraft_12bit.py']

model = dict(head=dict(code_length=24))
