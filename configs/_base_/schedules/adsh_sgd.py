# The authors' optimiser; the round schedule lives with each dataset.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=3e-4, momentum=0.9, weight_decay=1e-4))

val_cfg = dict()
test_cfg = dict()
