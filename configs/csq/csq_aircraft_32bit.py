_base_ = ['./csq_aircraft_12bit.py']

model = dict(head=dict(code_length=32), loss=dict(code_length=32))
