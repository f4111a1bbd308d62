_base_ = ['./a2netpp_vegfru_12bit.py']

# One attention map per bit; W is k x (k + 1) * 2048.
model = dict(
    neck=dict(num_attentions=32),
    head=dict(code_length=32, in_channels=(32 + 1) * 2048))
