# FISH's rounds as aassxun/DSH_Analysis runs them: DSH's 40 rounds and
# evaluations (dsh_40rounds.py), but lr x 0.1 after rounds 5, 15 and 35
# (set_flag.py: lr_step '5,15,35'; its logs: 1e-2, 1e-3, 1e-4, 1e-5).
_base_ = ['./dsh_40rounds.py']
param_scheduler = dict(milestones=[5, 15, 35])
