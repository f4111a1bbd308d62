_base_ = ['./dahnet_cub_12bit.py']

model = dict(head=dict(code_length=48))
