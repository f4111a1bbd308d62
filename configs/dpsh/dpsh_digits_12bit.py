# DPSH on the digits main job (see configs/queryopt/queryopt_digits_12bit.py:
# scikit-learn's 8x8 handwritten digits exported to the CUB layout by
# `python tools/export_digits.py data/digits`, 1,437 database images, 360
# queries, at 32x32, on CPU in minutes). Same loss, code memory and
# evaluation as the ResNet-50 configs (the pairwise likelihood against the
# memory of every training image's latest output, the database encoded at
# evaluation), scaled down: a narrow CIFAR-style ResNet-18 from scratch, the
# digits schedule (AdamW), and two changes to the network (below): a
# batch-normalised linear layer between the pooling and the hash layer, and
# PyTorch's default initialisation of the hash layer.
_base_ = [
    '../_base_/models/dpsh_r50.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_adamw.py',
    '../_base_/default_runtime.py',
]

# The ResNet-50 model (../_base_/models/dpsh_r50.py) at the digits' size,
# with two changes, without which this network from scratch does not learn
# the digits (mAP 0.10 to 0.12, every image on one to a few codes):
#
# 1. The pooled features are centred and scaled per batch before the hash
#    layer (MMPretrain's LinearNeck: pooling, Linear(128, 128),
#    BatchNorm1d). A ResNet from scratch gives every digit nearly the same
#    pooled feature (post-ReLU averages, mostly the black background's
#    response; at initialisation their spread over the training images is
#    0.28 of their common part), so every u is one shared vector g plus a
#    small image-dependent part. The likelihood's gradient on u_i,
#    1/2 mean_j (sigmoid(theta_ij) - s_ij) U_j over the memory rows, is
#    then about (sigmoid(theta) - 0.1) g / 2 for every image (nine pairs in
#    ten are dissimilar), and through the hash layer it moves g by |mean
#    feature|^2 for every step it moves the image-dependent part by their
#    spread^2: the network only learns to move g. The memory answers with
#    a delay (a row changes when its image is next sampled), so g swings
#    between opposite codes while the class-dependent part (s_ij pulling u
#    towards its class's rows) stays small. Tried without the neck, all
#    collapsed: AdamW lr 1e-3 or 1e-4, SGD lr 0.05, PyTorch's default or
#    N(0, 0.01) hash layer, alpha 0 or 0.1 (1.0: one code), and in short
#    runs batches of 64 and a 160-row memory refreshed every 10 steps.
# 2. PyTorch's default hash-layer initialisation (as DSH_Analysis' fc),
#    not DeepHash-pytorch's N(0, 0.01): on the centred features it starts
#    each class at its own random code of size ~0.6 a bit. From codes near
#    zero, the dissimilar majority pushes every class away from the
#    others at once, and two classes of similar digits that end in the
#    same leftover direction stay merged on one code (with the neck and
#    N(0, 0.01): 3 and 9 merged, mAP 0.87; with alpha 0.3 also 4 and 6,
#    0.77).
#
# A pretrained ResNet-50's features already differ by image, so the
# ResNet-50 configs keep DeepHash-pytorch's network and initialisation.
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        _delete_=True,
        **_base_.cifar_resnet18,
        out_indices=(3, )),
    neck=dict(
        _delete_=True,
        type='LinearNeck',
        in_channels=128,
        out_channels=128,
        gap_dim=2,
        norm_cfg=dict(type='BN1d')),
    head=dict(in_channels=128, init_cfg=None))
# A log line every 20 of a round's 189 iterations.
default_hooks = dict(logger=dict(interval=20))
