# A2-Net, Food-101, 48 bits. Architecture, loss and optimiser: the
# co-author's code; schedule: the paper (see the bases and docs/a2net.md).
_base_ = [
    '_base_/models/a2net_r50.py',
    '_base_/schedules/a2net_food101.py',
]

model = dict(
    neck=dict(num_attentions=48),
    head=dict(code_length=48, in_channels=(48 + 1) * 2048),
    # The code's switch: extra terms from half the rounds (70 // 2).
    loss=dict(switch_round=35))
