# Table 2, "+S" on the digits: the mean of the neck's encoded tokens (d =
# 64), one linear layer 64 -> k and tanh (TokenPoolHashHead), no queries.
_base_ = ['./queryopt_ablation-sq_digits_12bit.py']

model = dict(
    head=dict(
        _delete_=True,
        type='TokenPoolHashHead',
        code_length=12,
        in_channels=64,
        activation='tanh'))
