"""The configs' layout (MMPretrain's): one folder per method with its README
and metafile, a root model-index.yml, the models reachable through
MMPretrain's get_model / list_models, every config parsing, and the papers'
schedules as the facts files write them."""
import glob
import os.path as osp
import sys

import pytest
import yaml
from mmengine.config import Config

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
from get_flops import complexity  # noqa: E402

CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
METHODS = sorted(
    name for name in
    (osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', '*')))
    if osp.isdir(osp.join(REPO, 'configs', name)) and name != '_base_')
DATASETS = ('cub', 'aircraft', 'food101', 'nabirds', 'vegfru')


def load_yaml(path):
    with open(osp.join(REPO, path)) as f:
        return yaml.safe_load(f)


def metafile_models():
    """``(metafile, model dict)`` of every model of every metafile."""
    return [(f'configs/{method}/metafile.yml', model)
            for method in METHODS
            for model in load_yaml(f'configs/{method}/metafile.yml')['Models']]


def test_the_layout():
    assert METHODS == ['a2net', 'a2netpp', 'adsh', 'agmh', 'csq', 'dahnet',
                       'dpsh', 'exchnet', 'fish', 'hashnet', 'queryopt',
                       'queryopt-cls', 'semicon']
    # Every config sits in a method folder or the shared bases, except the
    # users' first command, which stays where it was.
    assert {c for c in CONFIGS if c.count('/') == 1} == {
        'configs/queryopt_cub_12bit.py'}
    for config in CONFIGS:
        folder = config.split('/')[1]
        assert folder in METHODS + ['_base_'] or config.count('/') == 1
        if folder in METHODS:
            assert osp.basename(config).startswith(folder + '_'), config
    for method in METHODS:
        for name in ('README.md', 'metafile.yml'):
            assert osp.isfile(osp.join(REPO, 'configs', method, name))


@pytest.mark.parametrize('config', CONFIGS)
def test_every_config_parses(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    if '_base_' not in config:
        # A whole config: a model, its data and its loop.
        assert cfg.model.type == 'mmqueryopt.HashRetriever'
        assert {'train_dataloader', 'val_dataloader', 'train_cfg',
                'optim_wrapper', 'default_hooks'} <= set(cfg)


def test_first_command_config_is_the_method_folders():
    top = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    inner = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_cub_12bit.py'))
    assert top.to_dict() == inner.to_dict()


@pytest.mark.parametrize('method', METHODS)
def test_readme_sections(method):
    with open(osp.join(REPO, 'configs', method, 'README.md')) as f:
        text = f.read()
    assert text.startswith('# ')
    for part in ('<!-- [ALGORITHM] -->', '## Abstract', '## How to use it',
                 '## Models and results', '## Citation',
                 '## What we chose where the paper is silent',
                 f'python tools/train.py configs/{method}/'):
        assert part in text, (method, part)
    # Every config the README links exists.
    for link in set(part.split(')')[0] for part in text.split('](')[1:]):
        if link.endswith('.py'):
            assert osp.isfile(osp.join(REPO, 'configs', method, link)), link


def test_metafiles_follow_mmpretrain_rules():
    names = []
    for method in METHODS:
        path = f'configs/{method}/metafile.yml'
        meta = load_yaml(path)
        assert set(meta) == {'Collections', 'Models'}
        (collection, ) = meta['Collections']
        assert collection['Name'] and collection['Paper']['Title']
        assert collection['README'] == f'configs/{method}/README.md'
        assert osp.isfile(osp.join(REPO, collection['README']))
        for model in meta['Models']:
            name = model['Name']
            names.append(name.lower())
            assert not name.endswith('.py') and name == name.lower()
            # MMPretrain's convention: {algorithm}_{backbone}[_{pretrain}]
            # _{NxbM}_{data}, the training field as NxbM.
            fields = name.split('_')
            assert fields[0] == method and 4 <= len(fields) <= 5, name
            assert fields[-2].split('x')[0].isdigit() and 'xb' in fields[-2]
            assert model['In Collection'] == collection['Name']
            assert type(model['Metadata']['Parameters']) is int
            assert type(model['Metadata']['FLOPs']) is int
            assert 'Weights' not in model
            (result, ) = model['Results']
            assert isinstance(result['Dataset'], str)
            assert result['Task'] == 'Image Retrieval'
            # The only metric is the paper's, named as such.
            assert set(result['Metrics']) <= {'Paper mAP'}
            assert model['Config'].startswith(f'configs/{method}/')
            assert osp.isfile(osp.join(REPO, model['Config']))
            assert model['Metadata']['Training Data'] == result['Dataset']
    assert len(names) == len(set(names))
    # Every paper config of a method is in its metafile.
    configs = {model['Config'] for _, model in metafile_models()}
    for method in METHODS:
        for dataset in DATASETS:
            for bits in (12, 24, 32, 48):
                assert (f'configs/{method}/{method}_{dataset}_{bits}bit.py'
                        in configs)


def test_model_index_imports_every_metafile_and_only_them():
    index = load_yaml('model-index.yml')
    assert set(index) == {'Import'}
    assert sorted(index['Import']) == sorted(
        f'configs/{method}/metafile.yml' for method in METHODS)


# The papers' figures the metafiles quote (the facts files' tables) and the
# reference models' parameter counts (the facts files, measured on the
# authors' code).
PAPER_MAP = {
    ('queryopt', 'cub', 12): 72.19, ('queryopt', 'vegfru', 48): 85.38,
    ('queryopt', 'nabirds', 24): 37.75, ('a2net', 'aircraft', 12): 40.00,
    ('a2net', 'food101', 32): 74.27, ('a2netpp', 'cub', 48): 82.71,
    ('a2netpp', 'nabirds', 12): 8.80, ('agmh', 'aircraft', 24): 83.45,
    ('agmh', 'vegfru', 12): 43.99, ('agmh', 'nabirds', 12): None,
    ('adsh', 'cub', 12): 20.03, ('adsh', 'vegfru', 24): 24.90,
    ('adsh', 'nabirds', 48): 25.34, ('exchnet', 'cub', 12): 25.14,
    ('exchnet', 'vegfru', 48): 69.30, ('semicon', 'cub', 24): 65.41,
    ('semicon', 'nabirds', 12): 8.12, ('dpsh', 'cub', 12): 8.68,
    ('dpsh', 'food101', 48): 20.06, ('hashnet', 'aircraft', 24): 17.75,
    ('hashnet', 'vegfru', 12): 3.70, ('fish', 'cub', 12): 76.77,
    ('fish', 'cub', 48): 80.88, ('fish', 'aircraft', 12): None,
    ('dahnet', 'cub', 12): 61.69, ('dahnet', 'cub', 48): 83.98,
    ('dahnet', 'nabirds', 12): None,
}
PARAMETERS = {
    'queryopt_resnet50_in1k-pre_1xb16_cub-12bit': 31_939_008,
    'a2net_resnet50_in1k-pre_1xb16_cub-12bit': 40_264_344,
    'a2net_resnet50_in1k-pre_1xb16_vegfru-48bit': 44_764_128,
    'a2netpp_resnet50_in1k-pre_1xb16_cub-12bit': 81_769_572,
    'agmh_resnet50_in1k-pre_1xb32_food101-12bit': 35_556_416,
    'agmh_resnet50_in1k-pre_1xb32_aircraft-48bit': 35_667_008,
    'adsh_resnet50_in1k-pre_1xb16_cub-12bit': 23_532_620,
    'adsh_resnet50_in1k-pre_1xb16_food101-48bit': 23_606_384,
    'csq_resnet50_in1k-pre_1xb16_cub-12bit': 23_532_620,
    'exchnet_resnet50_in1k-pre_1xb16_cub-12bit': 40_067_220,
    'exchnet_resnet50_in1k-pre_1xb16_nabirds-48bit': 40_435_896,
    'semicon_resnet50_in1k-pre_1xb16_cub-12bit': 42_393_670,
    'semicon_resnet50_in1k-pre_1xb16_aircraft-24bit': 42_418_246,
    'semicon_resnet50_in1k-pre_1xb16_vegfru-48bit': 42_467_398,
    'hashnet_resnet50_in1k-pre_1xb16_cub-12bit': 23_532_620,
    'dpsh_resnet50_in1k-pre_1xb16_nabirds-48bit': 23_606_384,
    'fish_resnet50_in1k-pre_1xb16_cub-12bit': 23_920_244,
    'fish_resnet50_in1k-pre_1xb16_cub-48bit': 23_927_480,
    'dahnet_resnet50_in1k-pre_1xb16_cub-12bit': 66_683_862,
    'dahnet_resnet50_in1k-pre_1xb16_cub-48bit': 66_757_590,
}


def test_metafile_numbers_are_the_facts():
    models = {model['Name']: model for _, model in metafile_models()}
    for (method, dataset, bits), expected in PAPER_MAP.items():
        (model, ) = [m for m in models.values() if m['Config'] ==
                     f'configs/{method}/{method}_{dataset}_{bits}bit.py']
        assert model['Results'][0]['Metrics'].get('Paper mAP') == expected
    for name, count in PARAMETERS.items():
        assert models[name]['Metadata']['Parameters'] == count


def test_gathered_results_read_the_metafiles():
    from mmqueryopt.analysis.results import paper_map
    for (method, dataset, bits), expected in PAPER_MAP.items():
        assert paper_map(method, dataset, bits) == expected
    assert paper_map('queryopt', 'cub', 12, variant='swin-t') is None
    assert paper_map('queryopt', 'digits', 12) is None


@pytest.mark.parametrize('method', [m for m in METHODS if m != 'a2netpp'])
def test_digits_metadata_is_the_built_models(method):
    """Parameters and FLOPs of the digits models, counted anew."""
    (model, ) = [m for _, m in metafile_models()
                 if m['Config'] == f'configs/{method}/{method}_digits_12bit.py']
    counted = complexity(
        Config.fromfile(osp.join(REPO, model['Config'])), (32, 32))
    assert model['Metadata']['Parameters'] == counted['params']
    assert model['Metadata']['FLOPs'] == counted['inference_macs']


def test_mmpretrain_finds_and_builds_our_models():
    import mmqueryopt  # noqa: F401  (registers the model index)
    from mmpretrain import get_model, list_models

    from mmqueryopt.models import HashRetriever
    found = set(list_models(task='Image Retrieval'))
    ours = {model['Name'] for _, model in metafile_models()}
    assert ours <= found
    assert set(list_models('agmh_', task='Image Retrieval')) == {
        n for n in ours if n.startswith('agmh_')}
    # Built in MMPretrain's scope, no weights loaded (none released; the
    # backbone's ImageNet weights come only with init_weights).
    for name, bits in (('agmh_resnet18-cifar_1xb16_digits-12bit', 12),
                       ('queryopt_resnet50_in1k-pre_1xb16_nabirds-32bit', 32)):
        model = get_model(name)
        assert isinstance(model, HashRetriever)
        assert model.head.code_length == bits
        assert model._config.model.head.code_length == bits


def test_registration_is_idempotent():
    import mmqueryopt  # noqa: F401
    from mmpretrain import list_models

    from mmqueryopt.model_index import register_model_index
    before = list_models(task='Image Retrieval')
    assert register_model_index() is True
    assert list_models(task='Image Retrieval') == before


# The schedules as the facts files write them: rounds, lr milestone, images
# sampled and passes per round, batch, dense evaluation from round, every
# how many rounds before.
SCHEDULES = {
    'queryopt': dict(cub=(40, 30, 2000, 30, 16, 31, 5),
                     aircraft=(40, 30, 2000, 30, 16, 31, 5),
                     food101=(120, 90, 2000, 10, 16, 91, 5),
                     nabirds=(50, 30, 4000, 30, 16, 41, 5),
                     vegfru=(50, 30, 4000, 30, 16, 41, 5)),
    'a2net': dict(cub=(60, 50, 2000, 20, 16, 51, 5),
                  aircraft=(60, 50, 2000, 20, 16, 51, 5),
                  food101=(70, 60, 2000, 20, 16, 61, 5),
                  nabirds=(70, 60, 4000, 20, 16, 61, 5),
                  vegfru=(70, 60, 4000, 20, 16, 61, 5)),
    'agmh': dict(cub=(40, 40, 2000, 30, 32, None, 1),
                 aircraft=(40, 40, 2000, 30, 32, None, 1),
                 food101=(50, 40, 2000, 30, 32, None, 1),
                 nabirds=(50, 40, 4000, 30, 32, None, 1),
                 vegfru=(50, 40, 4000, 30, 32, None, 1)),
}
SCHEDULES['a2netpp'] = SCHEDULES['a2net']
# aassxun/DSH_Analysis' rounds for every fine-grained dataset.
DSH_SCHEDULE = {
    dataset: (40, 35, samples, 30, 16, 36, 5)
    for dataset, samples in (('cub', 2000), ('aircraft', 2000),
                             ('food101', 2000), ('nabirds', 4000),
                             ('vegfru', 4000))}
for method in ('adsh', 'csq', 'dpsh', 'exchnet', 'hashnet', 'semicon'):
    SCHEDULES[method] = DSH_SCHEDULE
SCHEDULES['queryopt-cls'] = SCHEDULES['queryopt']


@pytest.mark.parametrize('method', sorted(SCHEDULES))
def test_each_protocol_schedule(method):
    for dataset, expected in SCHEDULES[method].items():
        for bits in (12, 48):
            cfg = Config.fromfile(osp.join(
                REPO, f'configs/{method}/{method}_{dataset}_{bits}bit.py'))
            rounds, drop, samples, passes, batch, dense, every = expected
            assert cfg.train_cfg.max_epochs == rounds
            assert cfg.param_scheduler.milestones == [drop]
            assert cfg.train_dataloader.sampler.num_samples == samples
            assert cfg.train_dataloader.sampler.epochs_per_round == passes
            assert cfg.train_dataloader.batch_size == batch
            assert cfg.train_cfg.val_interval == every
            assert cfg.train_cfg.get('dynamic_intervals') == (
                None if dense is None else [(dense, 1)])
            assert cfg.model.head.code_length == bits
