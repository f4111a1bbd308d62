_base_ = ['./queryopt_cls_nabirds_12bit.py']

model = dict(head=dict(code_length=24))
