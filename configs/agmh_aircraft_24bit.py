_base_ = [
    '_base_/models/agmh_r50.py',
    '_base_/schedules/agmh_aircraft.py',
]

model = dict(head=dict(code_length=24))
