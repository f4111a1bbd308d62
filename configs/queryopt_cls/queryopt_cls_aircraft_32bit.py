_base_ = ['./queryopt_cls_aircraft_12bit.py']

model = dict(head=dict(code_length=32))
