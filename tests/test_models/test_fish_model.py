"""FISH as DSH_Analysis runs it: sizes from the facts file, the reference's
keys (tests/data/fish_state_dict_12bit.txt) converted and computing what a
torchvision ResNet-50 with the filter and the masked hash layer written out
here computes, each loss term and the erasing in float64 by hand, the
label codes on hand-worked label matrices, bad input."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.converters import code_length, detect_method
from mmqueryopt.models import ADSHDatabase, DatabaseView
from mmqueryopt.models.databases.fish_label_code_database import (
    LabelCodeDatabase, fish_label_codes, images_off_their_label_code)
from mmqueryopt.models.heads.fish_hash_head import ClassMaskedHashHead
from mmqueryopt.models.losses.fish_loss import FishLoss, erase_peaks
from mmqueryopt.models.necks.fish_feature_filter_neck import \
    FeatureFilterNeck
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict

# baselines_facts.md, "FISH": 23,508,032 + 2049 C + (C + 1) k, C = 200.
FACTS_PARAMS = {12: 23_920_244, 48: 23_927_480}
DATABASE_BUFFERS = {'database.codes', 'database.labels'}


def build(bits=12):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/fish/fish_cub_{bits}bit.py'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    model = build(bits)
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == FACTS_PARAMS[bits]


def torchvision_resnet(state):
    """The reference's ``model`` (torchvision ResNet-50, fc to 200
    classes) with the reference weights, in float64."""
    net = torchvision.models.resnet50(num_classes=200)
    net.load_state_dict({
        key[len('model.'):]: value
        for key, value in state.items() if not key.startswith('model.b.')
    })
    return net.double()


def reference_codes(net, b_weight, b_bias, images):
    """fish_ResNet50's forward written out: (layer4 map, logits, b)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
    fm = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    channel_sum = fm.sum(1, keepdim=True)
    mean = channel_sum.mean((2, 3), keepdim=True)
    weight = torch.where(channel_sum > mean, 1.0,
                         torch.where(channel_sum < mean, 0.5, 0.0))
    logits = net.fc((fm * weight).mean((2, 3)))
    mask = torch.full_like(logits, 0.7)
    for row, cls in enumerate(logits.argmax(1)):
        mask[row, cls] = 1.0
    b = (logits * mask) @ b_weight.double().T + b_bias.double()
    return fm, logits, b


@pytest.mark.parametrize('train_mode', [False, True])
def test_converted_reference_weights_give_the_reference_codes(train_mode):
    state = reference_state_dict('fish', seed=3)
    assert detect_method(state) == 'fish'
    converted = convert_state_dict(state)
    assert len(converted) == len(key_list('fish')) == 322
    assert code_length(converted) == 12
    model = build().double()
    result = model.load_state_dict(converted, strict=False)
    assert set(result.missing_keys) == DATABASE_BUFFERS
    assert not result.unexpected_keys
    net = torchvision_resnet(state)
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    model.train(train_mode)
    net.train(train_mode)
    with torch.no_grad():
        fm, logits, expected = reference_codes(
            net, state['model.b.weight'], state['model.b.bias'], images)
        outputs = model.train_outputs(images)
    if train_mode:
        torch.testing.assert_close(outputs['logits'], logits, rtol=0,
                                   atol=1e-10)
        torch.testing.assert_close(outputs['feature_map'], fm, rtol=0,
                                   atol=1e-10)
    torch.testing.assert_close(outputs['relaxed_codes'], expected, rtol=0,
                               atol=1e-10)
    assert expected.abs().min() > 1e-6
    if not train_mode:
        codes = torch.stack([s.hash_code for s in model.predict(images)])
        assert torch.equal(codes, torch.where(expected >= 0, 1.0, -1.0))


def test_the_tool_converts_a_reference_checkpoint(tmp_path):
    src, dst = tmp_path / 'fish.pth', tmp_path / 'converted.pth'
    state = reference_state_dict('fish', seed=1)
    torch.save(state, src)
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_official_ckpt.py'),
         str(src), str(dst)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    saved = torch.load(dst, map_location='cpu')
    converted = saved.get('state_dict', saved)
    assert torch.equal(converted['head.hash_layer.weight'],
                       state['model.b.weight'])
    assert torch.equal(converted['head.classifier.bias'],
                       state['model.fc.bias'])
    assert torch.equal(converted['backbone.layer4.2.conv3.weight'],
                       state['model.layer4.2.conv3.weight'])


def test_feature_filter_by_hand():
    # Channel sums per position: [[4, 2], [2, 0]], mean 2: the 4 keeps its
    # weight 1, the 2s are exactly the mean (0), the 0 is halved.
    fm = torch.tensor([[[[3., 1.], [1., 0.]], [[1., 1.], [1., 0.]]]],
                      dtype=torch.float64)
    pooled, passed = FeatureFilterNeck()((fm, ))
    torch.testing.assert_close(pooled, torch.tensor([[3 / 4, 1 / 4]],
                                                    dtype=torch.float64))
    assert passed is fm


def test_head_damps_every_class_but_the_predicted_one():
    head = ClassMaskedHashHead(code_length=2, num_classes=3, in_channels=2)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1., 0], [0, 1], [1,
                                                                     1]]))
        head.classifier.bias.zero_()
        head.hash_layer.weight.copy_(torch.tensor([[1., 0, 0], [1, 1, 1]]))
        head.hash_layer.bias.copy_(torch.tensor([0., 1.]))
    pooled = torch.tensor([[1., 2.]])
    head.eval()
    # logits [1, 2, 3]: class 2 kept, the others x 0.7 -> [0.7, 1.4, 3].
    codes = head((pooled, torch.zeros(1, 2, 1, 1)))
    torch.testing.assert_close(codes, torch.tensor([[0.7, 0.7 + 1.4 + 3 +
                                                     1]]))
    head.train()
    out = head((pooled, torch.ones(1, 2, 1, 1)))
    torch.testing.assert_close(out['logits'], torch.tensor([[1., 2., 3.]]))
    torch.testing.assert_close(out['relaxed_codes'], codes)
    assert out['feature_map'].shape == (1, 2, 1, 1)


def test_erasing_by_hand():
    # Channel sum [[1, 3], [5, 7]] upsampled to 3x3 with aligned corners:
    # [[1, 2, 3], [3, 4, 5], [5, 6, 7]]; threshold 0.9 * 7 = 6.3 erases the
    # 7, 0.8 * 7 = 5.6 the 6 and the 7.
    fm = torch.tensor([[[[1., 1.], [2., 3.]], [[0., 2.], [3., 4.]]]],
                      dtype=torch.float64).repeat(2, 1, 1, 1)
    images = torch.arange(2 * 3 * 9, dtype=torch.float64).view(2, 3, 3, 3)
    erased = erase_peaks(images, fm, torch.tensor([0.9, 0.8],
                                                  dtype=torch.float64))
    keep = torch.ones(2, 1, 3, 3, dtype=torch.float64)
    keep[0, 0, 2, 2] = 0
    keep[1, 0, 2, 1:] = 0
    torch.testing.assert_close(erased, images * keep, rtol=0, atol=0)


def label_view(codes, labels, database_codes=None):
    return DatabaseView(batch_database_codes=codes, labels=labels,
                        database_codes=database_codes)


def test_loss_terms_by_hand():
    """CE + MSE + CE of the erased images through the network handed in;
    thresholds drawn in [0.9, 1)."""
    generator = torch.Generator().manual_seed(0)
    n, k, classes = 3, 4, 5
    codes = torch.randn(n, k, dtype=torch.float64, generator=generator)
    targets = torch.randn(n, k, dtype=torch.float64,
                          generator=generator).sign()
    logits = torch.randn(n, classes, dtype=torch.float64,
                         generator=generator)
    labels = torch.tensor([4, 0, 2])
    images = torch.randn(n, 3, 8, 8, dtype=torch.float64,
                         generator=generator)
    fm = torch.rand(n, 6, 2, 2, dtype=torch.float64, generator=generator)
    weight = torch.randn(classes, 3 * 64, dtype=torch.float64,
                         generator=generator)
    seen = []

    def network(erased):
        seen.append(erased)
        return dict(logits=erased.flatten(1) @ weight.T)

    loss = FishLoss(cls_weight=0.5, code_weight=2.0, erased_weight=3.0)
    torch.manual_seed(7)
    terms = loss(codes, label_view(targets, labels), logits=logits,
                 feature_map=fm, inputs=images, network=network)
    torch.manual_seed(7)
    thresholds = torch.empty(n, dtype=torch.float64).uniform_(0.9, 1.0)
    torch.testing.assert_close(seen[0], erase_peaks(images, fm, thresholds))

    def cross_entropy(scores):
        log_probs = scores - scores.exp().sum(1, keepdim=True).log()
        return -log_probs[torch.arange(n), labels].mean()

    torch.testing.assert_close(terms['loss_cls'], 0.5 * cross_entropy(logits))
    torch.testing.assert_close(terms['loss_code'],
                               2.0 * ((codes - targets)**2).sum() / (n * k))
    torch.testing.assert_close(
        terms['loss_cls_erased'],
        3.0 * cross_entropy(seen[0].flatten(1) @ weight.T))
    # One-hot labels: their arg-max class.
    again = loss(codes, label_view(targets, F.one_hot(labels, classes)),
                 logits=logits, feature_map=fm, inputs=images,
                 network=network)
    torch.testing.assert_close(again['loss_cls'], terms['loss_cls'])


def test_loss_refuses_other_databases_and_a_missing_network():
    kwargs = dict(logits=torch.zeros(1, 3), feature_map=torch.ones(1, 2, 1,
                                                                   1),
                  inputs=torch.zeros(1, 3, 4, 4))
    database = ADSHDatabase(code_width=2)
    database.prepare(torch.tensor([0, 1]))
    view = database.view(torch.tensor([0]), torch.tensor([0]), torch.float32)
    with pytest.raises(TypeError, match="type='LabelCodeDatabase'"):
        FishLoss()(torch.zeros(1, 2), view, network=lambda x: {}, **kwargs)
    with pytest.raises(TypeError, match='needs the network'):
        FishLoss()(torch.zeros(1, 2),
                   label_view(torch.ones(1, 2), torch.tensor([0])), **kwargs)
    with pytest.raises(ValueError, match='model.loss.threshold_range'):
        FishLoss(threshold_range=(0.9, 1.2))


def test_label_codes_on_a_hand_worked_label_matrix():
    """Two classes of two images, one bit. Start V0 = [0.5, -1, 2, 1],
    sign draws [1, -1, -1, 1]: B0 V0^T = 0.5 > 0, so R = 1.
    Pass 1: B = sign(V0) = [1, -1, 1, 1] (per image); U = L V0^T / (V0
    V0^T) = [-0.5, 3] / 6.25 = [-0.08, 0.48]; V1 = (U^T L + delta B) /
    (U^T U + delta) = ([-0.08, -0.08, 0.48, 0.48] + 1e-4 B) / (0.2368 +
    1e-4), R stays 1. Pass 2: B = sign(V1) = [-1, -1, 1, 1], one code per
    class, which later passes keep."""
    labels = torch.tensor([[1., 0], [1, 0], [0, 1], [0, 1]])
    start_real = torch.tensor([[0.5, -1, 2, 1]])
    start_signs = torch.tensor([[1., -1, -1, 1]])
    expected = {1: [1., -1, 1, 1], 2: [-1., -1, 1, 1], 15: [-1., -1, 1, 1]}
    for iterations, codes in expected.items():
        result = fish_label_codes(labels, start_real, start_signs,
                                  iterations)
        assert result.dtype == torch.float64
        assert torch.equal(result, torch.tensor(codes)[:, None]), iterations


def test_a_direction_the_labels_do_not_reach_keeps_each_images_code():
    """Two bits, V0's second row orthogonal to the labels: U = L V0^T / 4
    = [[0.5, 0], [-0.5, 0]] has rank 1, so the second bit's V stays
    delta R^T B / delta = V0's row: each image keeps its own bit."""
    labels = torch.tensor([[1., 0], [1, 0], [0, 1], [0, 1]])
    start = torch.tensor([[1., 1, -1, -1], [1, -1, 1, -1]])
    codes = fish_label_codes(labels, start, start, 15)
    assert torch.equal(codes, start.T)
    assert images_off_their_label_code(codes, labels.argmax(1)) == 2


def test_label_codes_are_nearly_class_wise():
    """The facts' observation (190 classes x 30 images): most images share
    their class's code, and the classes get (nearly) distinct codes."""
    labels = torch.arange(190).repeat_interleave(30)
    for bits in (12, 48):
        database = LabelCodeDatabase(code_width=bits)
        database.prepare(labels, torch.Generator().manual_seed(68))
        codes, held = database.retrieval_codes(bits)
        assert torch.equal(held, labels)
        assert set(codes.unique().tolist()) == {-1.0, 1.0}
        off = images_off_their_label_code(codes, labels)
        assert off / len(labels) < 0.1, (bits, off)
    # At 48 bits the classes' codes (of their first images) all differ.
    first = codes[::30]
    distances = (first[:, None] != first[None]).sum(-1)
    assert distances[~torch.eye(190, dtype=torch.bool)].min() > 0


def test_database_view_checkpoint_and_training_set_checks():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    database = LabelCodeDatabase(code_width=3)
    with pytest.raises(RuntimeError, match='not computed'):
        database.view(torch.tensor([0]), labels[:1], torch.float32)
    database.prepare(labels, torch.Generator().manual_seed(0))
    view = database.view(torch.tensor([4, 1]), labels[[4, 1]],
                         torch.float64)
    assert view.database_codes is None
    assert torch.equal(view.batch_database_codes,
                       database.codes[[4, 1]].double())
    assert view.labels.tolist() == [2, 0]
    restored = LabelCodeDatabase(code_width=3)
    restored.load_state_dict(database.state_dict())
    assert torch.equal(restored.codes, database.codes)
    restored.prepare(labels)  # loaded: kept as they are
    assert torch.equal(restored.codes, database.codes)
    with pytest.raises(ValueError, match='another dataset'):
        restored.prepare(torch.tensor([0, 1, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match='another code length'):
        LabelCodeDatabase(code_width=4).load_state_dict(
            database.state_dict())


def test_more_bits_than_the_labels_can_set_are_refused():
    labels = torch.arange(3).repeat_interleave(5)
    database = LabelCodeDatabase(code_width=6)
    with pytest.raises(ValueError) as error:
        database.prepare(labels, torch.Generator().manual_seed(0))
    message = str(error.value)
    assert 'model.head.code_length=6' in message
    assert 'rank 3' in message and 'code_length <= 3' in message
    assert database.num_database == 0  # nothing half-written
    LabelCodeDatabase(code_width=3).prepare(labels,
                                            torch.Generator().manual_seed(0))


def test_another_methods_checkpoint_is_named():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/adsh/adsh_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    adsh, fish, fish48 = MODELS.build(cfg.model), build(), build(48)
    with pytest.raises(ValueError, match="another method's neck or head"):
        fish.load_state_dict(adsh.state_dict(), strict=False)
    with pytest.raises(ValueError, match='code_length=48'):
        fish.load_state_dict(fish48.state_dict(), strict=False)


def test_a_training_batch_runs_the_network_again_on_the_erased_images():
    """HashRetriever.loss with FISH's parts (the digits network, float64)
    against the terms recomputed from the model's own outputs: the erased
    images go through the same network, with gradient."""
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/fish/fish_digits_12bit.py'))
    cfg.model.head.code_length = 4
    model = MODELS.build(cfg.model).double().train()
    labels = torch.arange(5).repeat(2)
    model.database.prepare(labels, torch.Generator().manual_seed(0))
    batch = torch.tensor([1, 7, 3])
    images = torch.randn(3, 3, 16, 16, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1))
    samples = [DataSample(metainfo=dict(sample_idx=int(i))).set_gt_label(
        int(labels[i])) for i in batch]
    torch.manual_seed(3)
    losses = model.loss(images, samples)
    sum(losses.values()).backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0

    with torch.no_grad():
        outputs = model.train_outputs(images)
        torch.manual_seed(3)
        thresholds = torch.empty(3, dtype=torch.float64).uniform_(0.9, 1.0)
        erased = erase_peaks(images, outputs['feature_map'], thresholds)
        assert (erased == 0).any() and not torch.equal(erased, images)
        erased_logits = model.train_outputs(erased)['logits']
    targets = model.database.codes[batch].double()
    torch.testing.assert_close(
        losses['loss_cls'], F.cross_entropy(outputs['logits'],
                                            labels[batch]))
    torch.testing.assert_close(
        losses['loss_code'],
        ((outputs['relaxed_codes'] - targets)**2).mean())
    torch.testing.assert_close(
        losses['loss_cls_erased'], F.cross_entropy(erased_logits,
                                                   labels[batch]))
