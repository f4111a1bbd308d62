"""QueryOpt† (our reconstruction of QueryOpt trained with classification):
the classifier on the relaxed codes, the cross-entropy by hand in float64
beside ADSH's unchanged terms, the parameter count, bad input."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, adsh_view
from mmqueryopt.models import ADSHLoss, QueryHashHead
from mmqueryopt.models.heads.query_hash_classifier_head import \
    QueryHashHeadWithClassifier
from mmqueryopt.models.losses.queryopt_cls_loss import QueryOptClsLoss
from mmqueryopt.registry import MODELS

# QueryOpt at 12 bits (its metafile) plus Linear(96, 200).
QUERYOPT_PARAMS = 31_939_008


def small_heads():
    kwargs = dict(code_length=4, relaxed_dims=8, embed_dims=16, num_heads=2,
                  ffn_dims=8)
    torch.manual_seed(0)
    plain = QueryHashHead(**kwargs)
    with_classifier = QueryHashHeadWithClassifier(num_classes=3, **kwargs)
    with_classifier.load_state_dict(plain.state_dict(), strict=False)
    return plain, with_classifier


def test_classifier_reads_the_relaxed_codes_in_training_only():
    plain, head = small_heads()
    feats = (torch.randn(2, 5, 16), torch.randn(2, 5, 16))
    plain.train(), head.train()
    out = head(feats)
    torch.testing.assert_close(out['relaxed_codes'], plain(feats))
    assert out['relaxed_codes'].shape == (2, 8)
    expected = out['relaxed_codes'] @ head.classifier.weight.T + \
        head.classifier.bias
    torch.testing.assert_close(out['class_logits'], expected)
    plain.eval(), head.eval()
    torch.testing.assert_close(head(feats), plain(feats))
    with pytest.raises(ValueError, match='model.head.num_classes'):
        QueryHashHeadWithClassifier(code_length=4, num_classes=1,
                                    relaxed_dims=8, embed_dims=16)


def test_loss_is_adsh_plus_the_weighted_cross_entropy_by_hand():
    generator = torch.Generator().manual_seed(0)
    codes = torch.rand(3, 4, dtype=torch.float64, generator=generator) * 2 - 1
    database = torch.randn(6, 4, dtype=torch.float64,
                           generator=generator).sign()
    database_labels = torch.tensor([0, 1, 2, 0, 1, 2])
    labels = torch.tensor([2, 0, 1])
    view = adsh_view(labels, torch.tensor([2, 3, 4]), database,
                     database_labels)
    logits = torch.randn(3, 3, dtype=torch.float64, generator=generator)
    terms = QueryOptClsLoss(cls_weight=0.5)(codes, view,
                                            class_logits=logits)
    adsh = ADSHLoss()(codes, view)
    torch.testing.assert_close(terms['loss_hash'], adsh['loss_hash'])
    torch.testing.assert_close(terms['loss_quant'], adsh['loss_quant'])
    log_probs = logits - logits.exp().sum(1, keepdim=True).log()
    expected = -log_probs[torch.arange(3), labels].mean()
    torch.testing.assert_close(terms['loss_cls'].double(), 0.5 * expected)
    # Multi-hot rows: a uniform target over their classes.
    multi = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 1, 1]])
    view = adsh_view(multi, torch.tensor([2, 3, 4]), database,
                     torch.eye(3, dtype=torch.long)[database_labels])
    terms = QueryOptClsLoss()(codes, view, class_logits=logits)
    target = multi.double() / multi.sum(1, keepdim=True)
    torch.testing.assert_close(terms['loss_cls'].double(),
                               -(target * log_probs).sum(1).mean())


def test_loss_names_the_head_it_needs_and_refuses_other_outputs():
    view = adsh_view(torch.tensor([0]), torch.tensor([0]),
                     torch.ones(2, 4), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match='QueryHashHeadWithClassifier'):
        QueryOptClsLoss()(torch.zeros(1, 4), view)
    with pytest.raises(TypeError, match='does not use'):
        QueryOptClsLoss()(torch.zeros(1, 4), view,
                          class_logits=torch.zeros(1, 2),
                          holistic_feats=torch.zeros(1, 2))
    with pytest.raises(ValueError, match='model.loss.cls_weight'):
        QueryOptClsLoss(cls_weight=-1)


def test_parameters_are_queryopts_plus_the_classifier():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt-cls/queryopt-cls_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    assert total == QUERYOPT_PARAMS + 96 * 200 + 200
