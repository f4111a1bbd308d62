_base_ = ['./csq_nabirds_12bit.py']

model = dict(head=dict(code_length=32), loss=dict(code_length=32))
