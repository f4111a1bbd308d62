# DAHNet's optimiser as aassxun/DSH_Analysis runs it (set_flag.py DAH,
# DAHNet_train.py): SGD with Nesterov momentum 0.91 (the trainer forces
# nesterov=True whatever the flags say), weight decay 1e-4, lr 2.5e-4 (5e-4
# for NABirds and VegFru: their configs set it). Every parameter trains,
# the classifiers too. The rounds are in dsh_40rounds.py; batch 16 and 30
# passes per round sit with each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=2.5e-4, momentum=0.91, weight_decay=1e-4,
        nesterov=True))
