_base_ = ['./fish_food101_12bit.py']

model = dict(head=dict(code_length=24))
