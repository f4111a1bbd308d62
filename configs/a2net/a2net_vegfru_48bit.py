_base_ = ['./a2net_vegfru_12bit.py']

# One attention map per bit; W is k x (k + 1) * 2048.
model = dict(
    neck=dict(num_attentions=48),
    head=dict(code_length=48, in_channels=(48 + 1) * 2048))
