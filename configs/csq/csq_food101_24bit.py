_base_ = ['./csq_food101_12bit.py']

model = dict(head=dict(code_length=24), loss=dict(code_length=24))
