"""One reader for every codes-file layout (issue #20, item 3): each layout
the tools write round-trips exactly, every malformed file is refused by
``tools/eval_codes.py`` and ``tools/analysis_tools/code_stats.py`` alike, in
one line naming the file and the key, and both tools accept the same
inputs."""
import io
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from mmqueryopt.evaluation import HammingMAP
from mmqueryopt.evaluation.functional import evaluate_retrieval
from mmqueryopt.retrieval import (FORMAT_VERSION, Codes, CodesFileError,
                                  load_codes, read_codes_file, read_labels,
                                  save_codes)

EVAL = osp.join(REPO, 'tools', 'eval_codes.py')
STATS = osp.join(REPO, 'tools', 'analysis_tools', 'code_stats.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
from code_stats import main as stats_main  # noqa: E402
from eval_codes import main as eval_main  # noqa: E402


def pm1(rng, num, nbits):
    return rng.choice([-1, 1], size=(num, nbits)).astype(np.int8)


def savez(path, **arrays):
    """An archive as np.savez writes it (the older writers' way)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path, 'wb') as f:
        f.write(buffer.getvalue())
    return str(path)


def hamming_map_dump(path, query, query_labels, database, database_labels):
    """A tools/test.py --out file, written by HammingMAP itself."""
    metric = HammingMAP(dump_file=str(path))
    metric.set_database(torch.as_tensor(database, dtype=torch.float32),
                        torch.as_tensor(database_labels))
    metric.process(None, [
        dict(hash_code=torch.as_tensor(c, dtype=torch.float32),
             gt_label=torch.as_tensor([int(label)]))
        for c, label in zip(query, query_labels)
    ])
    metric.evaluate(len(query))
    return str(path)


@pytest.fixture(scope='module')
def arrays():
    rng = np.random.default_rng(20)
    return dict(query_codes=pm1(rng, 30, 12),
                query_labels=rng.integers(0, 5, size=30),
                database_codes=pm1(rng, 80, 12),
                database_labels=rng.integers(0, 5, size=80))


@pytest.fixture(scope='module')
def dump(arrays, tmp_path_factory):
    path = tmp_path_factory.mktemp('dump') / 'dump.npz'
    return hamming_map_dump(path, arrays['query_codes'],
                            arrays['query_labels'], arrays['database_codes'],
                            arrays['database_labels'])


# ------------------------------------------------------------ round trips

def test_current_format_round_trips_one_set(tmp_path):
    rng = np.random.default_rng(0)
    # 13 bits: the last byte has padding bits.
    relaxed = rng.uniform(-1, 1, size=(6, 13)).astype(np.float32)
    signs = np.where(relaxed >= 0, 1, -1).astype(np.int8)
    labels = rng.integers(0, 2, size=(6, 4)).astype(bool)
    paths = np.array([f'img/{i}.jpg' for i in range(6)])
    meta = dict(method='QueryOpt', weights_sha256='ab')
    file = str(tmp_path / 'codes.npz')
    save_codes(file, Codes(np.packbits(signs > 0, axis=1), 13, paths, labels,
                           meta, relaxed))
    with np.load(file, allow_pickle=False) as archive:
        assert int(archive['format_version']) == FORMAT_VERSION == 2
        assert archive['codes'].dtype == np.uint8
        assert archive['codes'].shape == (6, 2)
    read = read_codes_file(file)
    assert read.layout == 'codes file' and list(read.sides) == ['']
    codes = read.side()
    np.testing.assert_array_equal(codes.signs(), signs)
    assert codes.signs().dtype == np.int8
    assert codes.paths.tolist() == paths.tolist()
    np.testing.assert_array_equal(codes.labels, labels)
    assert codes.labels.dtype == bool
    np.testing.assert_array_equal(codes.relaxed, relaxed)
    assert codes.meta == dict(meta, nbits=13)
    # A gallery is a one-set file with paths: load_codes reads the same.
    np.testing.assert_array_equal(load_codes(file).packed, codes.packed)


def test_current_format_round_trips_two_sides(arrays, tmp_path):
    sides = {
        side: Codes(np.packbits(arrays[f'{side}_codes'] > 0, axis=1), 12,
                    labels=arrays[f'{side}_labels'], meta=dict(method='m'))
        for side in ('query', 'database')
    }
    curve = np.linspace(0, 1, 13)
    file = str(tmp_path / 'sides.npz')
    save_codes(file, sides, extras=dict(pr_precision=curve))
    read = read_codes_file(file, need_labels=True)
    assert sorted(read.sides) == ['database', 'query']
    for side in ('query', 'database'):
        codes = read.side(side)
        np.testing.assert_array_equal(codes.signs(), arrays[f'{side}_codes'])
        np.testing.assert_array_equal(codes.labels, arrays[f'{side}_labels'])
        assert codes.paths is None and codes.relaxed is None
        assert codes.meta == dict(method='m', nbits=12)
    np.testing.assert_array_equal(read.extras['pr_precision'], curve)
    with pytest.raises(CodesFileError, match='not one set of codes'):
        read.side()
    with pytest.raises(CodesFileError, match='not one set of codes'):
        load_codes(file)


def test_older_layouts_load_as_the_current_one(arrays, dump, tmp_path):
    rng = np.random.default_rng(1)
    signs = pm1(rng, 5, 10)
    paths = np.array([f'{i}.png' for i in range(5)])
    labels = np.arange(5)
    # Version 1 of tools/encode.py: packed, no format_version.
    v1 = savez(tmp_path / 'v1.npz', codes=np.packbits(signs > 0, axis=1),
               nbits=np.int64(10), paths=paths, labels=labels,
               meta=np.array(json.dumps(dict(method='QueryOpt', nbits=10))))
    # --save-relaxed before format_version: int8 signs beside the values.
    relaxed = np.where(signs > 0, 0.5, -0.25).astype(np.float32)
    old_relaxed = savez(tmp_path / 'relaxed.npz', relaxed_codes=relaxed,
                        codes=signs, paths=paths, labels=labels)
    for file, layout in ((v1, 'codes file v1'),
                         (old_relaxed, 'relaxed codes')):
        read = read_codes_file(file)
        assert read.layout == layout
        codes = read.side()
        np.testing.assert_array_equal(codes.signs(), signs)
        assert codes.paths.tolist() == paths.tolist()
        np.testing.assert_array_equal(codes.labels, labels)
    assert read_codes_file(v1).side().meta['method'] == 'QueryOpt'
    np.testing.assert_array_equal(read_codes_file(old_relaxed).side().relaxed,
                                  relaxed)

    # A test dump: HammingMAP writes the current format; the layout before
    # it (int8 codes, no nbits, no meta) loads as the same two sides.
    curve = np.linspace(1, 0, 13)
    old_dump = savez(tmp_path / 'old_dump.npz', **arrays,
                     pr_precision=curve, pr_recall=curve[::-1])
    for file, layout in ((dump, 'codes file'), (old_dump, 'test dump')):
        read = read_codes_file(file, need_labels=True)
        assert read.layout == layout
        for side in ('query', 'database'):
            np.testing.assert_array_equal(read.side(side).signs(),
                                          arrays[f'{side}_codes'])
            np.testing.assert_array_equal(read.side(side).labels,
                                          arrays[f'{side}_labels'])
        assert read.extras['pr_precision'].shape == (13, )

    # .npy arrays: {-1, +1}, {0, 1} (any integer dtype) and bool.
    for form in (signs, (signs > 0).astype(np.uint8),
                 (signs > 0).astype(np.int64), signs > 0,
                 signs.astype(np.float32)):
        np.save(tmp_path / 'c.npy', form)
        read = read_codes_file(str(tmp_path / 'c.npy'))
        assert read.layout == 'npy'
        np.testing.assert_array_equal(read.side().signs(), signs)
    np.save(tmp_path / 'l.npy', labels)
    np.testing.assert_array_equal(
        read_labels(str(tmp_path / 'l.npy'), 5, 'c.npy'), labels)


# --------------------------------------------------- refusals, in-process

def _expect(file, key, message):
    with pytest.raises(CodesFileError, match=message) as info:
        read_codes_file(file, need_labels=True)
    assert info.value.path == file and info.value.key == key
    assert repr(file) in str(info.value)


def test_each_problem_names_the_file_and_the_key(arrays, tmp_path):
    a = arrays
    dump_with = lambda name, **changed: savez(  # noqa: E731
        tmp_path / f'{name}.npz', **dict(a, **changed))
    _expect(dump_with('two', query_codes=np.full((30, 12), 2)),
            'query_codes', r'in \{-1, \+1\} or in \{0, 1\}; got values \[2\]')
    _expect(dump_with('mixed', query_codes=np.where(a['query_codes'] > 0, 0,
                                                    -1)),
            'query_codes', r'got values \[-1, 0\]')
    _expect(dump_with('str', database_codes=np.full((80, 12), 'a')),
            'database_codes', 'numeric or bool dtype; got <U1')
    _expect(dump_with('flat', query_codes=a['query_codes'][:, 0]),
            'query_codes', r'\(N, nbits\)')
    _expect(dump_with('lengths', database_codes=a['database_codes'][:, :8]),
            'database_codes', r"code length of 'query_codes' \(12 bits\); "
            'got 8')
    _expect(dump_with('float_labels', query_labels=a['query_labels'] * 1.0),
            'query_labels', 'integer or bool')
    _expect(dump_with('hot', query_labels=np.full((30, 3), 2)),
            'query_labels', 'only 0 and 1')
    _expect(dump_with('kinds', query_labels=np.ones((30, 3), bool)),
            'database_labels', r"kind of 'query_labels' \(shape \(30, 3\)\)")

    packed = np.packbits(a['query_codes'] > 0, axis=1)
    base = dict(format_version=np.int64(2), nbits=np.int64(12),
                meta=np.array(json.dumps(dict(nbits=12))), codes=packed)
    current = lambda name, **changed: savez(  # noqa: E731
        tmp_path / f'{name}.npz', **dict(base, **changed))
    _expect(current('version', format_version=np.int64(3)), 'format_version',
            'must be 2')
    padded = packed.copy()
    padded[0, 1] |= 1
    _expect(current('padding', codes=padded), 'codes', 'padding bits')
    _expect(current('nolabels'), 'labels', 'missing: the metrics need')
    bad_relaxed = np.where(a['query_codes'] > 0, -1.0, 1.0)
    _expect(current('relaxed', labels=a['query_labels'],
                    relaxed_codes=bad_relaxed), 'relaxed_codes',
            'signs .* differ from the codes')
    one_side = {k: v for k, v in base.items() if k != 'codes'}
    _expect(savez(tmp_path / 'oneside.npz', query_codes=packed, **one_side),
            'database_codes', 'missing')
    # Not a codes file at all.
    _expect(savez(tmp_path / 'other.npz', x=np.zeros(3)), None,
            "holds none of the codes-file layouts: missing 'format_version'")


def test_save_codes_writes_only_what_loads(tmp_path):
    file = str(tmp_path / 'c.npz')
    good = Codes(np.zeros((2, 1), np.uint8), 8, meta=dict(method='m'))
    with pytest.raises(CodesFileError, match="key 'query_labels'.*3 labels"):
        save_codes(file, dict(query=Codes(good.packed, 8,
                                          labels=np.arange(3),
                                          meta=dict(method='m')),
                              database=good))
    with pytest.raises(ValueError, match='another nbits or meta'):
        save_codes(file, dict(query=Codes(np.zeros((2, 2), np.uint8), 16),
                              database=good))
    with pytest.raises(ValueError, match="'query_codes' is a key"):
        save_codes(file, good, extras=dict(query_codes=np.zeros(2)))
    assert not osp.exists(file)


# -------------------------------------------- the tools, as a user runs them

def run_tool(tool, *args):
    return subprocess.run([sys.executable, tool, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def assert_refused(proc, *names):
    assert proc.returncode != 0, proc.stdout
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: ')
    for name in names:
        assert name in lines[0], (name, lines[0])


def _malformed(case, arrays, dump, tmp):
    """(file, names the message must hold) of each malformed case."""
    a = arrays
    if case == 'truncated dump':
        with open(dump, 'rb') as f:
            head = f.read(osp.getsize(dump) // 2)
        with open(tmp / 'truncated.npz', 'wb') as f:
            f.write(head)
        return str(tmp / 'truncated.npz'), ('truncated.npz', 'truncated')
    if case == 'zero-byte npy':
        open(tmp / 'empty.npy', 'wb').close()
        return str(tmp / 'empty.npy'), ('empty.npy', '0 bytes')
    if case == 'object query_codes':
        file = savez(tmp / 'object.npz',
                     **dict(a, query_codes=a['query_codes'].astype(object)))
        return file, ('object.npz', "key 'query_codes'", 'allow_pickle')
    if case == 'labels one short':
        file = savez(tmp / 'short.npz',
                     **dict(a, query_labels=a['query_labels'][:-1]))
        return file, ('short.npz', "key 'query_labels'", '29 labels')
    if case == 'no query_labels':
        file = savez(tmp / 'nolabels.npz', **{
            k: v for k, v in a.items() if k != 'query_labels'})
        return file, ('nolabels.npz', "key 'query_labels'", 'missing')
    if case == 'sides of two lengths':
        file = savez(tmp / 'lengths.npz', **dict(
            a, database_codes=a['database_codes'][:, :8]))
        return file, ('lengths.npz', "key 'database_codes'", '12 bits')
    raise KeyError(case)


MALFORMED = ('truncated dump', 'zero-byte npy', 'object query_codes',
             'labels one short', 'no query_labels', 'sides of two lengths')


@pytest.mark.parametrize('case', MALFORMED)
def test_both_tools_refuse_in_one_line(case, arrays, dump, tmp_path):
    file, names = _malformed(case, arrays, dump, tmp_path)
    if file.endswith('.npy'):
        # As eval_codes takes arrays: the bad one among good ones.
        good = {}
        for key in ('query_labels', 'database_codes', 'database_labels'):
            good[key] = str(tmp_path / f'{key}.npy')
            np.save(good[key], arrays[key])
        eval_args = ('--query-codes', file, '--query-labels',
                     good['query_labels'], '--db-codes',
                     good['database_codes'], '--db-labels',
                     good['database_labels'])
    else:
        eval_args = (file, )
    assert_refused(run_tool(EVAL, *eval_args), *names)
    assert_refused(run_tool(STATS, file), *names)


def test_npy_labels_one_short_is_refused(arrays, tmp_path):
    paths = {}
    for key, value in dict(arrays,
                           query_labels=arrays['query_labels'][:-1]).items():
        paths[key] = str(tmp_path / f'{key}.npy')
        np.save(paths[key], value)
    proc = run_tool(EVAL, '--query-codes', paths['query_codes'],
                    '--query-labels', paths['query_labels'], '--db-codes',
                    paths['database_codes'], '--db-labels',
                    paths['database_labels'])
    assert_refused(proc, 'query_labels.npy', '29 labels', 'query_codes.npy')


def _results(tool, file, tmp_path, *extra, subprocess_run=True):
    """The tool's JSON output on ``file``: run as a user runs it, or (to
    spare the start-up time) through its main()."""
    args = (file, *extra)
    if not subprocess_run:
        main = eval_main if tool == EVAL else stats_main
        result = json.loads(json.dumps(main(list(map(str, args)))))
    else:
        out = tmp_path / f'{osp.basename(tool)}-{osp.basename(file)}.json'
        proc = run_tool(tool, *args, '--out-json', out)
        assert proc.returncode == 0, proc.stderr
        assert 'Traceback' not in proc.stderr
        with open(out) as f:
            result = json.load(f)
    result.pop('source', None)
    return result


def test_both_tools_accept_every_form_alike(arrays, dump, tmp_path):
    """A {0, 1} dump (which code_stats used to refuse), a bool one and the
    current format with sides give the ±1 dump's results in both tools."""
    a = arrays
    zero_one = savez(tmp_path / 'zero_one.npz', **dict(
        a, query_codes=(a['query_codes'] > 0).astype(np.int8),
        database_codes=(a['database_codes'] > 0).astype(np.uint8)))
    boolean = savez(tmp_path / 'bool.npz', **dict(
        a, query_codes=a['query_codes'] > 0,
        database_codes=a['database_codes'] > 0))
    current = str(tmp_path / 'current.npz')
    save_codes(current, {
        side: Codes(np.packbits(a[f'{side}_codes'] > 0, axis=1), 12,
                    labels=a[f'{side}_labels'])
        for side in ('query', 'database')
    })
    direct = evaluate_retrieval(a['query_codes'], a['database_codes'],
                                a['query_labels'], a['database_labels'],
                                precision_k=(10, ))
    expected_metrics = {f'retrieval/{k}': v for k, v in direct.items()}
    balance = (a['database_codes'] > 0).mean(axis=0)
    reference_stats = None
    for file, as_user in ((dump, True), (zero_one, True), (boolean, False),
                          (current, False)):
        assert _results(EVAL, file, tmp_path, '--precision-k', '10',
                        subprocess_run=as_user) == expected_metrics
        stats = _results(STATS, file, tmp_path, '--side', 'database',
                         subprocess_run=as_user)
        np.testing.assert_array_equal(stats['balance'], balance)
        assert stats['num_items'] == 80 and stats['nbits'] == 12
        reference_stats = reference_stats or stats
        assert stats == reference_stats
