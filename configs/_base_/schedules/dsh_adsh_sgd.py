# ADSH's optimiser as aassxun/DSH_Analysis ran it for the 12-48-bit logs:
# SGD lr 1e-4, momentum 0.9, no Nesterov, weight decay 1e-5 (run.py's
# default; set_flag.py at HEAD says 1e-4, which only the 2024 96-256-bit
# runs used). Every parameter trains. The rounds are in dsh_40rounds.py;
# batch 16 and 30 passes per round sit with each config's dataloader.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-5))
