# Table 2, row "+S": the subtle feature extractor (S) under the base
# network's hash layer, no learned queries (Q) and hence no branches: the
# mean of the neck's 245 encoded tokens, one linear layer 384 -> k
# (PyTorch's default init) and tanh (TokenPoolHashHead; why this reading of
# the paper: configs/queryopt/README.md). Everything else is
# ./queryopt_ablation-sq_cub_12bit.py.
_base_ = ['./queryopt_ablation-sq_cub_12bit.py']

model = dict(
    head=dict(
        _delete_=True,
        type='TokenPoolHashHead',
        code_length=12,
        in_channels=384,
        activation='tanh'))
