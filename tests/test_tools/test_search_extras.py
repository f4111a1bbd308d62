"""tools/test.py --show-dir/--out, tools/eval_codes.py and the config of a
folder of your own classes (issue #14)."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import test as test_tool
from conftest import REPO, tiny_digits_cfg
from encode import main as encode_main
from eval_codes import main as eval_main
from mmqueryopt.datasets import ClassFolders, DatasetError
from mmqueryopt.evaluation.functional import evaluate_retrieval
from mmqueryopt.fileio import read_codes_file
from mmqueryopt.registry import DATASETS
from mmqueryopt.retrieval.grid import grid_size
# The tiny trained digits model of the encode/search tests.
from test_search_tools import _border_colours, trained  # noqa: F401


@pytest.fixture(scope='module')
def test_run(trained, tmp_path_factory):
    """tools/test.py with --show-dir and --out: (metrics, show dir, out)."""
    config, ckpt = trained
    tmp = tmp_path_factory.mktemp('test_run')
    show_dir, out = str(tmp / 'show'), str(tmp / 'codes.npz')
    captured = {}
    original = Runner.test

    def test_and_keep(runner):
        # tools/test.py prints the metrics; the test needs their values.
        captured.update(original(runner))
        return captured

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Runner, 'test', test_and_keep)
        test_tool.main([
            config, ckpt, '--work-dir', str(tmp / 'work'), '--show-dir',
            show_dir, '--show-num', '3', '--show-topk', '7', '--out', out
        ])
    return captured, show_dir, out


def test_show_dir_draws_the_first_queries(trained, test_run):
    _, show_dir, _ = test_run
    cfg = Config.fromfile(trained[0])
    queries = DATASETS.build(cfg.test_dataloader.dataset)
    # The first three test images, in dataset order.
    expected = [
        f'{n:03d}_' + osp.splitext(
            osp.basename(queries.get_data_info(n)['img_path']))[0] + '.png'
        for n in range(3)
    ]
    assert sorted(os.listdir(show_dir)) == expected
    for name in expected:
        with Image.open(osp.join(show_dir, name)) as img:
            assert img.format == 'PNG'
            assert img.size == grid_size(1 + 7)
            # Labelled digits: right or wrong borders, not grey ones.
            assert _border_colours(img)


def test_show_dir_with_encoded_database(trained, tmp_path):
    config, ckpt = trained
    show_dir, out = str(tmp_path / 'show'), str(tmp_path / 'codes.npz')
    test_tool.main([
        config, ckpt, '--work-dir', str(tmp_path / 'work'), '--database',
        'encoded', '--show-dir', show_dir, '--show-num', '2', '--out', out
    ])
    assert len(os.listdir(show_dir)) == 2
    assert read_codes_file(out).side('database').signs().shape == (1437, 12)


def test_out_round_trips_to_the_same_map(test_run, capsys):
    metrics, _, out = test_run
    dump = read_codes_file(out, need_labels=True)
    assert dump.side('query').signs().shape == (360, 12)
    assert dump.side('database').signs().shape == (1437, 12)
    assert set(np.unique(dump.side('query').signs())) <= {-1, 1}
    offline = eval_main([out])
    assert offline['retrieval/mAP'] == metrics['retrieval/mAP']
    assert 'retrieval/mAP:' in capsys.readouterr().out


def test_eval_codes_options_match_evaluate_retrieval(test_run):
    _, _, out = test_run
    dump = read_codes_file(out, need_labels=True)
    query, database = dump.side('query'), dump.side('database')
    offline = eval_main([
        out, '--map-topk', '10', '--precision-k', '5', '--radius', '1',
        '--tie-break', 'expected'
    ])
    direct = evaluate_retrieval(
        query.signs(), database.signs(), query.labels, database.labels,
        map_topk=(None, 10), precision_k=(5, ), radius=(1, ),
        tie_break=('index', 'expected'))
    assert offline == {f'retrieval/{k}': v for k, v in direct.items()}


def _npy(tmp_path, **arrays):
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(tmp_path / f'{name}.npy')
        np.save(paths[name], array)
    return paths


@pytest.mark.parametrize('multi_hot', [False, True])
def test_eval_codes_on_npy_pairs(tmp_path, multi_hot):
    rng = np.random.default_rng(0)
    q = rng.choice([-1, 1], size=(30, 16)).astype(np.int8)
    d = rng.choice([-1, 1], size=(200, 16)).astype(np.int8)
    if multi_hot:
        ql = rng.integers(0, 2, size=(30, 5)).astype(bool)
        dl = rng.integers(0, 2, size=(200, 5)).astype(bool)
    else:
        ql, dl = rng.integers(0, 5, size=30), rng.integers(0, 5, size=200)
    p = _npy(tmp_path, q=q, ql=ql, d=d, dl=dl)
    offline = eval_main([
        '--query-codes', p['q'], '--query-labels', p['ql'], '--db-codes',
        p['d'], '--db-labels', p['dl'], '--precision-k', '10'
    ])
    direct = evaluate_retrieval(q, d, ql, dl, precision_k=(10, ))
    assert offline == {f'retrieval/{k}': v for k, v in direct.items()}


def test_eval_codes_on_two_codes_files(trained, tmp_path):
    """Codes files of tools/encode.py: the same metric as on the arrays."""
    config, ckpt = trained
    database = str(tmp_path / 'database.npz')
    queries = str(tmp_path / 'queries.npz')
    encode_main([config, ckpt, '--out', database, '--batch-size', '128'])
    encode_main([config, ckpt, '--split', 'query', '--out', queries,
                 '--batch-size', '128'])
    from mmqueryopt.retrieval import load_codes
    q, d = load_codes(queries), load_codes(database)
    offline = eval_main([queries, database])
    direct = evaluate_retrieval(q.packed, d.packed, q.labels, d.labels,
                                nbits=12)
    assert offline['retrieval/mAP'] == direct['mAP']


def test_eval_codes_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    p = _npy(tmp_path, q=rng.choice([-1, 1], size=(4, 12)),
             d=rng.choice([-1, 1], size=(6, 16)), ql=np.arange(4),
             dl=np.arange(6))
    with pytest.raises(SystemExit, match='code lengths differ.*q.npy.*12.*'
                       'd.npy.*16'):
        eval_main(['--query-codes', p['q'], '--query-labels', p['ql'],
                   '--db-codes', p['d'], '--db-labels', p['dl']])
    missing = str(tmp_path / 'nope.npy')
    with pytest.raises(SystemExit, match='database labels file not found.*'
                       'nope.npy'):
        eval_main(['--query-codes', p['q'], '--query-labels', p['ql'],
                   '--db-codes', p['q'], '--db-labels', missing])
    # A label file not given at all: argparse names it.
    with pytest.raises(SystemExit):
        eval_main(['--query-codes', p['q'], '--db-codes', p['d']])
    with pytest.raises(SystemExit, match='missing.*query_codes'):
        np.savez(tmp_path / 'other.npz', x=np.zeros(3))
        eval_main([str(tmp_path / 'other.npz')])


def test_eval_codes_refuses_mismatched_codes_files(tmp_path):
    from mmqueryopt.retrieval import Codes, save_codes
    paths = []
    for name, nbits in (('q', 12), ('d', 16)):
        bits = np.random.default_rng(0).integers(0, 2, size=(5, nbits))
        path = str(tmp_path / f'{name}.npz')
        save_codes(path, Codes(np.packbits(bits, axis=1), nbits,
                               np.array([f'{i}.png' for i in range(5)]),
                               np.arange(5), dict(method='m')))
        paths.append(path)
    with pytest.raises(SystemExit, match=r"code lengths differ.*q\.npz.*12 "
                       r"bits.*d\.npz.*16"):
        eval_main(paths)
    # Codes files without labels: the metric cannot be computed.
    save_codes(paths[1], Codes(np.zeros((5, 2), np.uint8), 12,
                               np.array([f'{i}.png' for i in range(5)]),
                               None, dict(method='m')))
    with pytest.raises(SystemExit, match="d.npz', key 'labels': missing"):
        eval_main(paths)


def _class_tree(root, classes=('cat', 'dog', 'owl'), per_split=None):
    """A folder of class subfolders: small PNG and JPEG images of a colour
    per class, in train/ and test/."""
    per_split = per_split or dict(train=4, test=2)
    rng = np.random.default_rng(0)
    for split, count in per_split.items():
        for c, name in enumerate(classes):
            os.makedirs(osp.join(root, split, name), exist_ok=True)
            for i in range(count):
                pixels = np.full((20, 24, 3), 60 * c + 40, np.uint8)
                pixels += rng.integers(0, 30, size=pixels.shape,
                                       dtype=np.uint8)
                ext = 'png' if i % 2 else 'jpg'
                Image.fromarray(pixels).save(
                    osp.join(root, split, name, f'{i}.{ext}'))


def _tiny_custom_cfg(data_root, work_dir):
    """configs/queryopt/queryopt_custom_12bit.py with the tiny digits network
    (the ResNet-50's ImageNet weights are not downloaded in tests) and 32-pixel
    crops; the datasets are the config's."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_custom_12bit.py'))
    cfg.model = tiny_digits_cfg(data_root, work_dir).model
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.pipeline[1].scale = 32
    cfg.val_dataloader.dataset.pipeline[1].scale = 36
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 32
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_dataloader.sampler.epochs_per_round = 1
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler.milestones = [10**6]
    cfg.default_hooks.checkpoint.update(interval=10**6, save_best=None)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.experiment_name = 'tiny_custom'
    return cfg


def test_custom_config_trains_and_evaluates(tmp_path):
    root = str(tmp_path / 'photos')
    _class_tree(root)
    runner = Runner.from_cfg(_tiny_custom_cfg(root, str(tmp_path / 'work')))
    runner.train()
    # ADSH's database: the train/ images, labels from the folder names.
    model = runner.model
    assert model.database.num_database == 12
    assert model.database.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert runner.iter == 1
    mAP = runner.message_hub.get_scalar('val/retrieval/mAP').current()
    assert 0 < mAP <= 1


def test_custom_config_empty_folder_is_a_clear_error(tmp_path):
    root = str(tmp_path / 'photos')
    os.makedirs(osp.join(root, 'train', 'cat'))
    os.makedirs(osp.join(root, 'test', 'cat'))
    runner = Runner.from_cfg(_tiny_custom_cfg(root, str(tmp_path / 'work')))
    with pytest.raises(DatasetError, match='no image in the class folders '
                       'of .*train'):
        runner.train()


def test_class_ids_are_shared_by_both_splits(tmp_path):
    """A class missing from the queries shifts no other class's id (with
    MMPretrain's CustomDataset, 'owl' queries would be labelled 1)."""
    root = str(tmp_path / 'photos')
    _class_tree(root, per_split=dict(train=2))
    _class_tree(root, classes=('cat', 'owl'), per_split=dict(test=1))
    _class_tree(root, classes=('emu', ), per_split=dict(test=1))
    train = ClassFolders(root, 'train')
    test = ClassFolders(root, 'test')
    assert train.CLASSES == test.CLASSES == ('cat', 'dog', 'emu', 'owl')
    assert train.get_gt_labels().tolist() == [0, 0, 1, 1, 3, 3]
    assert test.get_gt_labels().tolist() == [0, 2, 3]
    with pytest.raises(FileNotFoundError, match="no folder .*query'"):
        ClassFolders(root, 'query', splits=('train', 'query'))
    with pytest.raises(ValueError, match="split 'val' is not one of"):
        ClassFolders(root, 'val')

