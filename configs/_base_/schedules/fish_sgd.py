# FISH's optimiser as aassxun/DSH_Analysis runs it (fish.py builds SGD with
# lr and momentum only): lr 1e-2, momentum 0.9, no weight decay (its logs
# print wd 1e-5, which the optimiser never receives), no Nesterov. Every
# parameter trains. The rounds are in fish_40rounds.py; batch 16 and 30
# passes per round sit with each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-2, momentum=0.9, weight_decay=0))
