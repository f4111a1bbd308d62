_base_ = ['./fish_cub_12bit.py']

model = dict(head=dict(code_length=48))
