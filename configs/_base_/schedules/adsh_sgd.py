# The QueryOpt authors' optimiser (ADSH's protocol). The round counts are in
# adsh_{40,50,120}rounds.py; the passes per round (the papers' "epochs",
# train_dataloader.sampler.epochs_per_round) and the images sampled per
# round (num_samples, in the dataset's base) sit with the dataloader, which
# MMEngine lets only one base of a config set.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=3e-4, momentum=0.9, weight_decay=1e-4))

val_cfg = dict()
test_cfg = dict()
