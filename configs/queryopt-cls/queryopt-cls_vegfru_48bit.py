_base_ = ['./queryopt-cls_vegfru_12bit.py']

model = dict(head=dict(code_length=48))
