"""ADSH as DSH_Analysis runs it: sizes from the facts file, the reference's
keys (tests/data/adsh_state_dict_12bit.txt) converted and computing what
torchvision's ResNet-50 computes with them, the loss of a batch in float64
by hand, bad input."""
import os.path as osp

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.converters import code_length, detect_method
from mmqueryopt.models.heads import LinearHashHead
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict

# baselines_facts.md, "Summary": 23,508,032 + 2049 k, all trainable.
FACTS_PARAMS = {12: 23_532_620, 48: 23_606_384}
DATABASE_BUFFERS = {'database.codes', 'database.sampled_codes',
                    'database.labels'}


def build(bits=12):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/adsh/adsh_cub_{bits}bit.py'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    model = build(bits)
    assert not Config.fromfile(
        osp.join(REPO, f'configs/adsh/adsh_cub_{bits}bit.py')).model.get(
            'frozen_modules')
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == FACTS_PARAMS[bits]


def torchvision_reference(state, bits):
    """The reference network as torchvision builds it (DSH_Analysis'
    models/resnet.py is torchvision's ResNet-50 with a tanh on fc), in
    float64."""
    net = torchvision.models.resnet50(num_classes=bits)
    net.load_state_dict(state)
    return net.double()


@pytest.mark.parametrize('train_mode', [False, True])
def test_converted_reference_weights_give_the_reference_codes(train_mode):
    state = reference_state_dict('adsh', seed=3)
    assert detect_method(state) == 'adsh'
    converted = convert_state_dict(state)
    assert len(converted) == len(key_list('adsh')) == 320
    assert code_length(converted) == 12
    model = build().double()
    result = model.load_state_dict(converted, strict=False)
    assert set(result.missing_keys) == DATABASE_BUFFERS
    assert not result.unexpected_keys
    reference = torchvision_reference(state, 12)
    images = torch.randn(3, 3, 64, 64, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    model.train(train_mode)
    reference.train(train_mode)
    with torch.no_grad():
        expected = torch.tanh(reference(images))
        relaxed = model.extract_feat(images)
    torch.testing.assert_close(relaxed, expected, rtol=0, atol=1e-10)
    # Codes are the signs, away from ties.
    assert expected.abs().min() > 1e-6
    if not train_mode:
        codes = torch.stack(
            [s.hash_code for s in model.predict(images.float().double())])
        assert torch.equal(codes, torch.where(expected >= 0, 1.0, -1.0))


def test_loss_of_a_batch_is_the_soft_adsh_loss_in_float64():
    """HashRetriever.loss with the ADSH config's parts against the formula
    written out: S soft (+1 / -P/N over the round's sample), gamma 200,
    hash + quant scaled by 12/k."""
    model = build().double().train()
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 2, 1])
    generator = torch.Generator().manual_seed(1)
    model.database.prepare(labels, generator)
    sampled = torch.tensor([5, 0, 2, 7])
    model.database.start_round(0, 40, sampled)
    batch = torch.tensor([0, 7])
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64,
                         generator=generator)
    samples = [DataSample(metainfo=dict(sample_idx=int(i))).set_gt_label(
        int(labels[i])) for i in batch]
    losses = model.loss(images, samples)

    with torch.no_grad():
        model.eval()  # same BN statistics: recompute in train mode below
    model.train()
    relaxed = model.extract_feat(images).detach()
    B = model.database.codes
    # -P/N over the round's sample (4 images) against the 8 database ones.
    same = labels[sampled][:, None] == labels[None, :]
    negative = -same.sum().item() / (~same).sum().item()
    S = torch.where(labels[batch][:, None] == labels[None, :], 1.0,
                    negative).double()
    k, n, m = 12, 2, 8
    hash_ = ((k * S - relaxed @ B.T)**2).sum() / (n * m) / k * 12
    quant = ((relaxed - B[batch])**2).sum() / (n * m) * 200 / k * 12
    torch.testing.assert_close(losses['loss_hash'], hash_)
    torch.testing.assert_close(losses['loss_quant'], quant)
    # U keeps the batch's codes at their database rows.
    torch.testing.assert_close(model.database.sampled_codes[batch], relaxed)


def test_another_methods_checkpoint_is_named():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    queryopt = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match="another method's neck or head"):
        build().load_state_dict(queryopt.state_dict(), strict=False)
    with pytest.raises(ValueError, match='code_length=48'):
        build().load_state_dict(build(48).state_dict(), strict=False)


def test_head_rejects_unknown_activation_and_unpooled_maps():
    with pytest.raises(ValueError, match='model.head.activation'):
        LinearHashHead(12, activation='sigmoid')
    with pytest.raises(ValueError, match='model.head.in_channels'):
        LinearHashHead(12)(torch.zeros(2, 2048, 7, 7))
