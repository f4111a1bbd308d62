# HashNet's optimiser as aassxun/DSH_Analysis runs it (set_flag.py, and the
# headers of its logs): SGD lr 3e-4, momentum 0.9, no Nesterov, weight decay
# 5e-4. Every parameter trains. The rounds are in dsh_40rounds.py; batch 16
# and 30 passes per round sit with each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=3e-4, momentum=0.9, weight_decay=5e-4))
