_base_ = ['./hashnet_vegfru_12bit.py']

model = dict(head=dict(code_length=24))
