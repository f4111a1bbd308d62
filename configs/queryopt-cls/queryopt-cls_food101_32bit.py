_base_ = ['./queryopt-cls_food101_12bit.py']

model = dict(head=dict(code_length=32))
