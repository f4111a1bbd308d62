_base_ = ['./agmh_aircraft_12bit.py']

model = dict(head=dict(code_length=48))
