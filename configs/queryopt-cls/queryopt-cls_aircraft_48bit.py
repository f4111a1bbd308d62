_base_ = ['./queryopt-cls_aircraft_12bit.py']

model = dict(head=dict(code_length=48))
