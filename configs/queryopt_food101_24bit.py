_base_ = [
    '_base_/models/queryopt_r50.py',
    '_base_/schedules/adsh_food101.py',
]

model = dict(head=dict(code_length=24))
