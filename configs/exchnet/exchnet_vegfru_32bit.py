_base_ = ['./exchnet_vegfru_12bit.py']

model = dict(head=dict(code_length=32))
