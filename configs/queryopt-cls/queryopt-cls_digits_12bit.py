# QueryOpt† on the digits main job (see
# configs/queryopt/queryopt_digits_12bit.py): the digits QueryOpt plus a
# linear classifier on the relaxed codes and its cross-entropy (weight 1),
# 10 classes.
_base_ = ['../queryopt/queryopt_digits_12bit.py']

model = dict(
    head=dict(type='QueryHashHeadWithClassifier', num_classes=10),
    loss=dict(type='QueryOptClsLoss', cls_weight=1.0))
