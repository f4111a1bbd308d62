# SEMICON's optimiser as aassxun/DSH_Analysis ran it for its logs: SGD with
# Nesterov momentum 0.91 (SEMICON_train.py forces nesterov=True), weight
# decay 1e-4, lr 2.5e-4 (the logs of CUB, Aircraft, Food-101, Stanford
# Dogs; set_flag.py at HEAD says 5e-4 everywhere, which only the NABirds and
# VegFru logs ran: their configs set it). Every parameter trains. The
# rounds are in dsh_40rounds.py; batch 16 and 30 passes per round sit with
# each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=2.5e-4, momentum=0.91, weight_decay=1e-4,
        nesterov=True))
