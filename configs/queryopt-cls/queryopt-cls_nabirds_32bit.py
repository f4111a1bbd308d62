_base_ = ['./queryopt-cls_nabirds_12bit.py']

model = dict(head=dict(code_length=32))
