"""Our registry types from every place a user names them: our configs
(scope ``mmqueryopt``), MMPretrain's (scope ``mmpretrain``, the
``mmqueryopt.`` prefix, ``custom_imports``) and plain Python
(docs/registry_and_scopes.md)."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope
from mmpretrain import registry as pretrain

from conftest import REPO
from mmqueryopt import registry as ours
from mmqueryopt.models import ADSHLoss, HashRetriever, QueryHashHead

TINY_MODEL = dict(
    type='HashRetriever',
    backbone=dict(type='ResNet', depth=18, out_indices=(2, 3)),
    neck=dict(type='SubtleFeatureNeck', in_channels=(256, 512), embed_dims=16,
              top_down_channels=8, num_heads=2, ffn_dims=16),
    head=dict(type='QueryHashHead', code_length=12, relaxed_dims=24,
              embed_dims=16, num_heads=2, ffn_dims=16),
    loss=dict(type='ADSHLoss'),
    database=dict(type='ADSHDatabase', gamma=200.0))


def prefixed(cfg: dict) -> dict:
    """``cfg`` with the top-level type as MMPretrain's scope must name it."""
    return dict(cfg, type='mmqueryopt.' + cfg['type'])


def test_our_scope_names_our_types_and_mmpretrains_bare():
    init_default_scope('mmqueryopt')
    model = ours.MODELS.build(TINY_MODEL)
    assert isinstance(model, HashRetriever)
    # ResNet is MMPretrain's, found through the child registry.
    assert type(model.backbone).__name__ == 'ResNet'
    assert ours.MODELS.get('ResNet') is pretrain.MODELS.get('ResNet')


def test_python_without_a_default_scope_uses_our_registry():
    """Our registry objects build our types whatever the default scope."""
    with DefaultScope.overwrite_default_scope(None):
        loss = ours.MODELS.build(dict(type='ADSHLoss', scale_bits=24))
    assert isinstance(loss, ADSHLoss) and loss.scale_bits == 24


def test_mmpretrain_scope_needs_the_prefix():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        # Bare names are looked up in MMPretrain's registry, which does not
        # hold ours (children are found only by their scope prefix).
        assert pretrain.MODELS.get('QueryHashHead') is None
        with pytest.raises(KeyError, match='ADSHLoss is not in the '
                           'mmpretrain::model registry'):
            pretrain.MODELS.build(dict(type='ADSHLoss'))
        assert pretrain.MODELS.get('mmqueryopt.QueryHashHead') is \
            QueryHashHead
        loss = pretrain.MODELS.build(dict(type='mmqueryopt.ADSHLoss'))
        assert isinstance(loss, ADSHLoss)
        # The prefix switches the scope for the whole build: the nested
        # bare names (ours and MMPretrain's) resolve from our scope.
        model = pretrain.MODELS.build(prefixed(TINY_MODEL))
    assert isinstance(model, HashRetriever)
    assert isinstance(model.head, QueryHashHead)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 24)


def test_mmpretrain_config_brings_us_in_by_custom_imports(tmp_path):
    """An MMPretrain config (default_scope='mmpretrain') whose
    custom_imports name mmqueryopt builds our model in a fresh process
    that never imported mmqueryopt itself."""
    config = tmp_path / 'mmpretrain_style.py'
    config.write_text(textwrap.dedent(f'''\
        default_scope = 'mmpretrain'
        custom_imports = dict(imports=['mmqueryopt'],
                              allow_failed_imports=False)
        model = {prefixed(TINY_MODEL)!r}
        '''))
    script = textwrap.dedent(f'''\
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        assert 'mmqueryopt' not in sys.modules
        cfg = Config.fromfile({str(config)!r})
        assert 'mmqueryopt' in sys.modules
        init_default_scope(cfg.default_scope)
        from mmpretrain.registry import MODELS
        model = MODELS.build(cfg.model)
        print(type(model).__module__, type(model.neck).__name__,
              model.code_length)
        ''')
    result = subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        'mmqueryopt.models.hash_retriever', 'SubtleFeatureNeck', '12']


def test_our_configs_run_under_mmpretrains_tools():
    """Our base runtime names our scope and imports us: what MMPretrain's
    own tools/train.py needs to run our configs."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    assert cfg.default_scope == 'mmqueryopt'
    assert cfg.custom_imports.imports == ['mmqueryopt']
