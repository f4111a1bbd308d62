import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, adsh_view
from mmqueryopt.models import ADSHLoss, QueryHashHead, SubtleFeatureNeck
from mmqueryopt.registry import MODELS



def build_cub_model(code_length):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.head.code_length = code_length
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('code_length, trainable', [(12, 31_713_664),
                                                     (48, 31_727_488)])
def test_cub_model_size_and_output_shapes(code_length, trainable):
    model = build_cub_model(code_length)
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == trainable
    # Stem and layer1 (225,344 parameters) are frozen but still counted.
    assert sum(p.numel()
               for p in model.parameters()) == trainable + 225_344
    images = torch.randn(2, 3, 224, 224)
    model.eval()
    assert model(images).shape == (2, code_length)
    model.train()
    assert model(images).shape == (2, 96)


def test_frozen_stem_keeps_batchnorm_in_train_mode():
    model = build_cub_model(12)
    model.train()
    assert model.backbone.bn1.training and model.backbone.layer1[0].bn1.training
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert all(p.requires_grad for p in model.backbone.layer2.parameters())


@pytest.mark.parametrize('code_length, relaxed_dims', [(64, 96), (128, 96),
                                                       (0, 96), (5, 96)])
def test_code_length_must_divide_relaxed_dims(code_length, relaxed_dims):
    with pytest.raises(ValueError, match=f'code_length={code_length}|'
                       f'positive int, got {code_length}'):
        QueryHashHead(code_length, relaxed_dims=relaxed_dims)


def test_branch_queries_are_circular_shifts():
    head = QueryHashHead(12, relaxed_dims=96, embed_dims=384)
    queries = head.query_embed.weight.detach().numpy()
    branches = head.branch_queries().detach().numpy()
    assert branches.shape == (96, 384)
    step = 384 // 8
    for branch in range(8):
        for row in range(12):
            for feature in (0, 1, 47, 48, 200, 383):
                # A positive roll moves feature f to f + shift.
                source = (feature - branch * step) % 384
                assert branches[branch * 12 + row, feature] == \
                    queries[row, source]


def test_head_branch_zero_is_the_inference_code():
    torch.manual_seed(0)
    head = QueryHashHead(24, relaxed_dims=96, embed_dims=64, num_heads=4,
                         ffn_dims=32)
    memory, pos = torch.randn(3, 10, 64), torch.randn(3, 10, 64)
    head.train()
    relaxed = head((memory, pos))
    head.eval()
    codes = head((memory, pos))
    assert relaxed.shape == (3, 96) and codes.shape == (3, 24)
    torch.testing.assert_close(relaxed[:, :24], codes)
    # Branch 1 decodes the queries rolled by 64 / 4 = 16 features.
    with torch.no_grad():
        head.query_embed.weight.copy_(
            torch.roll(head.query_embed.weight, 16, dims=1))
    torch.testing.assert_close(relaxed[:, 24:48], head((memory, pos)))
    assert relaxed.abs().max() < 1


def test_neck_position_embedding_offsets_second_level():
    neck = SubtleFeatureNeck(in_channels=(8, 16), embed_dims=8,
                             top_down_channels=4, num_heads=2, ffn_dims=8)
    c3, c4 = torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)
    tokens, pos = neck((c3, c4))
    assert tokens.shape == pos.shape == (2, 36 + 9, 8)
    col, row = neck.col_embed.weight, neck.row_embed.weight
    # P3 token (y=2, x=5) and C4 token (y=1, x=2), whose rows and columns
    # both start at P3's width, 6.
    torch.testing.assert_close(pos[0, 2 * 6 + 5], torch.cat([col[5], row[2]]))
    torch.testing.assert_close(pos[1, 36 + 1 * 3 + 2],
                               torch.cat([col[8], row[7]]))


def test_neck_init_is_the_authors():
    """Kaiming (fan_out) conv weights with PyTorch's default biases, BN at
    (1, 0): the facts file's init of the fusion path."""
    torch.manual_seed(0)
    neck = SubtleFeatureNeck(in_channels=(64, 128), embed_dims=32,
                             top_down_channels=64, num_heads=2, ffn_dims=32)
    neck.init_weights()
    convs = [m for m in [neck.lateral, *neck.top_down]
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 4
    for conv in convs:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(
            conv.weight)
        # Default bias: uniform within 1 / sqrt(fan_in), so not all zero.
        bound = 1 / fan_in**0.5
        assert conv.bias.abs().max() <= bound
        assert conv.bias.abs().max() > bound / 2
        # Kaiming normal, fan_out, relu gain: std sqrt(2 / fan_out).
        assert conv.weight.std().item() == pytest.approx(
            (2 / fan_out)**0.5, rel=0.15)
    for bn in neck.top_down:
        if isinstance(bn, torch.nn.BatchNorm2d):
            assert torch.equal(bn.weight, torch.ones_like(bn.weight))
            assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_adsh_loss_on_hand_built_example():
    # n = 2 batch images, m = 3 database images, L = 2 relaxed bits.
    relaxed = torch.tensor([[0.5, -1.0], [1.0, 0.0]], dtype=torch.float64)
    batch_labels = torch.tensor([0, 1])
    batch_indices = torch.tensor([2, 0])
    database = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]],
                            dtype=torch.float64)
    database_labels = torch.tensor([1, 0, 0])
    # S = [[0, 1, 1], [1, 0, 0]]; L*S = [[0, 2, 2], [2, 0, 0]];
    # F B^T = [[-0.5, -1.5, 1.5], [1, -1, 1]];
    # residual^2 = [[0.25, 12.25, 0.25], [1, 1, 1]], sum 15.75.
    # hash = 15.75 / (2*3) / 2 * 12 = 15.75.
    # F - B[omega] = [[-0.5, 0], [0, -1]], sum of squares 1.25;
    # quant = 1.25 / 6 * 200 / 2 * 12 = 250.
    losses = ADSHLoss()(relaxed, adsh_view(batch_labels, batch_indices,
                                           database, database_labels))
    assert losses['loss_hash'].item() == pytest.approx(15.75)
    assert losses['loss_quant'].item() == pytest.approx(250.0)


def test_adsh_loss_stays_fp32_under_autocast():
    torch.manual_seed(0)
    relaxed = torch.tanh(torch.randn(16, 96))
    database = torch.randn(500, 96).sign()
    labels, database_labels = torch.randint(0, 5, (16, )), torch.randint(
        0, 5, (500, ))
    indices = torch.randperm(500)[:16]
    loss = ADSHLoss()
    expected = loss(relaxed.double(),
                    adsh_view(labels, indices, database.double(),
                              database_labels))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = loss(relaxed.bfloat16(),
                   adsh_view(labels, indices, database, database_labels,
                             dtype=torch.float32))
    for key in expected:
        assert got[key].dtype == torch.float32
        # Only the bf16 rounding of the inputs remains.
        assert got[key].item() == pytest.approx(expected[key].item(),
                                                rel=2e-3)


def test_retriever_modes(digits_root, tmp_path):
    from conftest import tiny_digits_cfg
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg(digits_root, str(tmp_path))
    model = MODELS.build(cfg.model)
    images = torch.randn(4, 3, 16, 16)
    from mmpretrain.structures import DataSample
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 3)
        for i in (5, 0, 7, 2)
    ]
    with pytest.raises(RuntimeError, match='database is empty'):
        model(images, samples, mode='loss')
    model.database.prepare(torch.arange(10) % 3)
    model.train()
    losses = model(images, samples, mode='loss')
    assert set(losses) == {'loss_hash', 'loss_quant'}
    # U holds the relaxed codes of exactly the batch's rows.
    assert model.database.sampled_codes.abs().sum(1).nonzero().flatten(
    ).tolist() == [0, 2, 5, 7]
    model.eval()
    predicted = model(images, samples, mode='predict')
    codes = torch.stack([s.hash_code for s in predicted])
    assert codes.shape == (4, 12)
    relaxed = model(images)
    assert (relaxed != 0).all()
    torch.testing.assert_close(codes, torch.sign(relaxed))
    with pytest.raises(KeyError, match='sample_idx'):
        model.train()
        model(images, [DataSample().set_gt_label(0)] * 4, mode='loss')


def test_missing_pretrained_file_says_how_to_supply_it():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    cfg.model.backbone.init_cfg.checkpoint = '/nonexistent/resnet50.pth'
    model = MODELS.build(cfg.model)
    with pytest.raises(OSError) as info:
        model.init_weights()
    message = str(info.value)
    assert '/nonexistent/resnet50.pth' in message
    assert 'model.backbone.init_cfg.checkpoint=' in message
