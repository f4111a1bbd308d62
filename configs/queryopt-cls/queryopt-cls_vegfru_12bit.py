# QueryOpt† (QueryOpt trained with classification, the appendix's Table 5;
# our reconstruction: see configs/queryopt-cls/README.md), VegFru, 12
# bits: QueryOpt's config plus a linear classifier on the relaxed codes and
# its cross-entropy (weight 1). The other code lengths inherit this file.
_base_ = ['../queryopt/queryopt_vegfru_12bit.py']

model = dict(
    head=dict(type='QueryHashHeadWithClassifier', num_classes=292),
    loss=dict(type='QueryOptClsLoss', cls_weight=1.0))
