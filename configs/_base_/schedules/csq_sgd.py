# CSQ's optimiser as aassxun/DSH_Analysis runs it (set_flag.py and its
# logs): SGD lr 1e-3, momentum 0.9, no Nesterov, weight decay 1e-4. Every
# parameter trains. The rounds are in dsh_40rounds.py; batch 16 and 30
# passes per round sit with each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4))
