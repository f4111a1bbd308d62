"""QueryOpt's Table 2 (ablation: base, +S, +S+Q, +S+Q+A) and Table 3
(number of branches N) configs: each builds, the rows differ only in the
parts they switch on, and their sizes are what those parts' layer shapes
give (counted here in closed form, checked against the facts file)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from mmqueryopt.models.heads import LinearHashHead, QueryHashHead
from mmqueryopt.models.heads.token_pool_hash_head import TokenPoolHashHead
from mmqueryopt.registry import MODELS

FOLDER = osp.join(REPO, 'configs', 'queryopt')
ROWS = ('base', 's', 'sq', 'sqa')
BITS = (12, 24, 32, 48)
BRANCHES = (1, 2, 4, 6, 8, 12)  # the paper's Table 3


def config(name: str) -> Config:
    return Config.fromfile(osp.join(FOLDER, name))


def build(cfg: Config):
    init_default_scope('mmqueryopt')
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    return MODELS.build(model_cfg)


def counts(model):
    """(all parameters, trainable parameters)."""
    return (sum(p.numel() for p in model.parameters()),
            sum(p.numel() for p in model.parameters() if p.requires_grad))


def leaf_differences(a, b, prefix=''):
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = set()
        for key in set(a) | set(b):
            found |= leaf_differences(a.get(key), b.get(key),
                                      f'{prefix}{key}.')
        return found
    return set() if a == b else {prefix[:-1]}


def test_the_config_sets_exist():
    names = {osp.basename(p) for p in glob.glob(osp.join(FOLDER, '*.py'))}
    for row in ROWS:
        for bits in BITS:
            assert f'queryopt_ablation-{row}_cub_{bits}bit.py' in names
        assert f'queryopt_ablation-{row}_digits_12bit.py' in names
    for dataset in ('cub', 'aircraft'):
        for n in BRANCHES:
            assert f'queryopt_branches-{n}_{dataset}_12bit.py' in names
    assert len([n for n in names if 'ablation' in n]) == 4 * 4 + 4
    assert len([n for n in names if 'branches' in n]) == 2 * 6


# --------------------------------------------- the rows switch one part each

# What each row switches on over the row before it, as config keys.
SWITCHED = {
    's': {'model.backbone.out_indices', 'model.neck', 'model.head'},
    'sq': {'model.head'},
    'sqa': {'model.head.relaxed_dims'},
}


@pytest.mark.parametrize('dataset, bits', [('cub', b) for b in BITS] +
                         [('digits', 12)])
def test_rows_differ_only_in_the_parts_they_switch_on(dataset, bits):
    cfgs = {row: config(f'queryopt_ablation-{row}_{dataset}_{bits}bit.py')
            .to_dict() for row in ROWS}
    main = config(f'queryopt_{dataset}_{bits}bit.py').to_dict()
    assert cfgs['sqa'] == main
    for before, after in zip(ROWS, ROWS[1:]):
        found = leaf_differences(cfgs[before], cfgs[after])
        # Collapse each switched part's sub-keys onto the part.
        parts = {next((p for p in SWITCHED[after]
                       if key == p or key.startswith(p + '.')), key)
                 for key in found}
        assert parts == SWITCHED[after], (before, after, found)
    assert cfgs['sq']['model']['head']['relaxed_dims'] == bits
    assert cfgs['sqa']['model']['head']['relaxed_dims'] == 96
    for cfg in cfgs.values():
        assert cfg['model']['head']['code_length'] == bits
    assert cfgs['base']['model']['neck'] == dict(type='GlobalAveragePooling')
    assert cfgs['base']['model']['backbone']['out_indices'] == (3, )
    assert cfgs['s']['model']['head']['type'] == 'TokenPoolHashHead'


@pytest.mark.parametrize('row', ROWS)
@pytest.mark.parametrize('bits', BITS[1:])
def test_longer_codes_change_the_code_length_only(row, bits):
    short = config(f'queryopt_ablation-{row}_cub_12bit.py').to_dict()
    long = config(f'queryopt_ablation-{row}_cub_{bits}bit.py').to_dict()
    expected = {'model.head.code_length'}
    if row == 'sq':
        expected.add('model.head.relaxed_dims')
    assert leaf_differences(short, long) == expected


@pytest.mark.parametrize('dataset', ['cub', 'aircraft'])
@pytest.mark.parametrize('n', BRANCHES)
def test_branch_configs_change_the_relaxed_width_only(dataset, n):
    main = config(f'queryopt_{dataset}_12bit.py').to_dict()
    cfg = config(f'queryopt_branches-{n}_{dataset}_12bit.py').to_dict()
    assert cfg['model']['head']['relaxed_dims'] == 12 * n
    assert leaf_differences(main, cfg) == (
        set() if n == 8 else {'model.head.relaxed_dims'})
    if dataset == 'cub' and n == 1:
        assert cfg == config('queryopt_ablation-sq_cub_12bit.py').to_dict()


# ------------------------------------------------ sizes from layer shapes


def resnet50_params(stages: int = 4) -> int:
    """Parameters of torchvision's ResNet-50 without its classifier: the
    stem and the first ``stages`` stages of bottlenecks (expansion 4, a 1x1
    projection shortcut opening each stage), every conv without bias and
    followed by a BatchNorm (2 parameters a channel)."""
    total = 3 * 64 * 7 * 7 + 2 * 64
    inplanes = 64
    for planes, blocks in list(zip((64, 128, 256, 512), (3, 4, 6, 3)))[
            :stages]:
        for block in range(blocks):
            total += inplanes * planes + 2 * planes  # 1x1
            total += 9 * planes * planes + 2 * planes  # 3x3
            total += planes * 4 * planes + 2 * 4 * planes  # 1x1, expand
            if block == 0:
                total += inplanes * 4 * planes + 2 * 4 * planes
            inplanes = 4 * planes
    return total


def attention_layer_params(d: int, ffn: int) -> int:
    """One post-norm transformer layer: multi-head attention (q, k, v and
    output projections with biases), two LayerNorms, the FFN."""
    return (4 * d * d + 4 * d) + 2 * 2 * d + (d * ffn + ffn + ffn * d + d)


def neck_params(c3: int, c4: int, d: int, top_down: int, ffn: int,
                tables: int = 50) -> int:
    """The subtle feature extractor: lateral 1x1 conv; top-down 1x1 conv,
    BN, 4x4 transposed conv, BN, 1x1 conv, BN; two 1x1 projections to d;
    row and column tables of d / 2; one encoder layer."""
    lateral = c3 * c3 + c3
    path = (c4 * top_down + top_down + 2 * top_down
            + 16 * top_down * top_down + top_down + 2 * top_down
            + top_down * c3 + c3 + 2 * c3)
    projections = (c3 * d + d) + (c4 * d + d)
    return (lateral + path + projections + 2 * tables * (d // 2)
            + attention_layer_params(d, ffn))


def query_head_params(k: int, d: int, ffn: int) -> int:
    """k queries, one cross-attention decoder layer, the decoder's final
    LayerNorm and the shared bias-free d -> 1 projection (branches: none)."""
    return k * d + attention_layer_params(d, ffn) + 2 * d + d


def linear_head_params(k: int, width: int) -> int:
    return width * k + k


FROZEN = resnet50_params(stages=1)  # stem and layer1


def expected_cub_params(row: str, k: int) -> int:
    """All parameters of a CUB ablation row at k bits (d = 384)."""
    if row == 'base':
        return resnet50_params() + linear_head_params(k, 2048)
    body = resnet50_params() + neck_params(1024, 2048, 384, 256, 2048)
    if row == 's':
        return body + linear_head_params(k, 384)
    return body + query_head_params(k, 384, 2048)


def test_closed_forms_give_the_facts_file_numbers():
    # torchvision's ResNet-50: 25,557,032 with its 1000-way classifier.
    assert resnet50_params() + 2048 * 1000 + 1000 == 25_557_032
    assert FROZEN == 225_344
    # Facts file: 31,713,664 trainable (31,939,008 in all) at 12 bits,
    # 31,727,488 trainable at 48.
    assert expected_cub_params('sqa', 12) - FROZEN == 31_713_664
    assert expected_cub_params('sqa', 12) == 31_939_008
    assert expected_cub_params('sqa', 48) - FROZEN == 31_727_488
    # ADSH's reference model (baselines facts): 23,532,620 at 12 bits.
    assert expected_cub_params('base', 12) == 23_532_620


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('row', ROWS)
def test_cub_row_sizes_are_their_parts(row, bits):
    model = build(config(f'queryopt_ablation-{row}_cub_{bits}bit.py'))
    expected = expected_cub_params(row, bits)
    # Every row keeps QueryOpt's frozen stem and layer1.
    assert counts(model) == (expected, expected - FROZEN)
    head_type = dict(base=LinearHashHead, s=TokenPoolHashHead,
                     sq=QueryHashHead, sqa=QueryHashHead)[row]
    assert type(model.head) is head_type
    assert model.head.relaxed_dims == (96 if row == 'sqa' else bits)
    assert model.database.codes.shape[1] == model.head.relaxed_dims


def test_digits_rows_add_their_parts():
    """The digits rows' backbone is a narrow ResNet-18 (not in closed form
    here); each row adds exactly its part's parameters over the row before
    (d = 64, neck maps of 64 and 128 channels, top-down width 32, FFN
    128)."""
    sizes = {row: counts(build(config(
        f'queryopt_ablation-{row}_digits_12bit.py')))[0] for row in ROWS}
    neck = neck_params(64, 128, 64, 32, 128)
    assert sizes['s'] - sizes['base'] == (
        neck + linear_head_params(12, 64) - linear_head_params(12, 128))
    assert sizes['sq'] - sizes['s'] == (
        query_head_params(12, 64, 128) - linear_head_params(12, 64))
    assert sizes['sqa'] == sizes['sq']


# ------------------------------------------------------------- branches


@pytest.mark.parametrize('n', BRANCHES)
def test_branches_add_no_parameters_and_decode_k_times_n_queries(n):
    model = build(config(f'queryopt_branches-{n}_cub_12bit.py'))
    assert counts(model) == (31_939_008, 31_713_664)
    head = model.head
    assert head.num_branches == n
    queries = head.query_embed.weight.detach()
    branches = head.branch_queries().detach()
    assert branches.shape == (12 * n, 384)
    shift = 384 // n
    for i in range(n):
        # Branch i: every query's features moved right by i * 384 / N,
        # the last ones wrapping round to the front.
        s = i * shift
        rolled = (torch.cat([queries[:, 384 - s:], queries[:, :384 - s]], 1)
                  if s else queries)
        torch.testing.assert_close(branches[12 * i:12 * (i + 1)], rolled,
                                   rtol=0, atol=0)
    torch.manual_seed(0)
    memory, pos = torch.randn(2, 245, 384), torch.randn(2, 245, 384)
    head.train()
    relaxed = head((memory, pos))
    head.eval()
    codes = head((memory, pos))
    assert relaxed.shape == (2, 12 * n) and codes.shape == (2, 12)
    # Branch 0 is the inference code; the others decode other queries.
    torch.testing.assert_close(relaxed[:, :12], codes)
    if n > 1:
        assert not torch.allclose(relaxed[:, 12:24], codes)


def test_the_digits_rows_train(digits_root, tmp_path):
    """The two rows with parts the full model lacks (the base network's
    pooled hash layer, the +S row's token pooling) run a digits round."""
    from test_method_configs import run_digits_round
    for row in ('base', 's'):
        runner = run_digits_round(
            f'configs/queryopt/queryopt_ablation-{row}_digits_12bit.py',
            digits_root, tmp_path / row, num_samples=16)
        assert runner.model.database.codes.shape == (1437, 12)
