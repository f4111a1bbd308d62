# DPSH's optimiser in the efficient training setting. DPSH is not in
# aassxun/DSH_Analysis, and the run behind A2-Net's and QueryOpt's DPSH
# column is not published; swuxyj/DeepHash-pytorch trains it with RMSprop
# lr 1e-5 over 150 epochs (dhp_150epochs.py). Our choice: the optimiser of
# the other pairwise method in DSH_Analysis' loop, HashNet's: SGD lr 3e-4,
# momentum 0.9, no Nesterov, weight decay 5e-4. The rounds are in
# dsh_40rounds.py; batch 16 and 30 passes per round sit with each config's
# dataloader.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=3e-4, momentum=0.9, weight_decay=5e-4))
