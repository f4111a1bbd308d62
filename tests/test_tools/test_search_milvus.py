"""tools/encode.py --milvus-uri and tools/search.py --backend milvus, run as
a user runs them (subprocesses; each opens its own Milvus Lite server)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from mmqueryopt.retrieval import Codes, load_codes, save_codes
from search import main as search_main
# The tiny trained digits model and its database codes file.
from test_search_tools import database, trained  # noqa: F401

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec('pymilvus') is None
    or importlib.util.find_spec('milvus_lite') is None,
    reason='pymilvus and milvus-lite are not installed '
    '(pip install -e ".[milvus]")')


def run_tool(tool, *args, env=None):
    environ = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, f'tools/{tool}.py', *map(str, args)], cwd=REPO,
        capture_output=True, text=True, timeout=300, env=environ)
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return proc


def error_line(proc):
    """The one line a refused run prints (warnings of other packages
    aside)."""
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines()
             if line.startswith('error: ')]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope='module')
def loaded(trained, tmp_path_factory):
    """tools/encode.py --milvus-uri: (codes file, Milvus Lite file), the
    collection named after the codes file."""
    config, ckpt = trained
    tmp = tmp_path_factory.mktemp('milvus_tools')
    out, uri = str(tmp / 'gallery.npz'), str(tmp / 'enc.db')
    proc = run_tool('encode', config, ckpt, '--out', out, '--milvus-uri',
                    uri, '--batch-size', '128', '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"1437 codes -> collection 'gallery' at {uri}" in proc.stderr
    return out, uri


def queries(codes_file):
    paths = load_codes(codes_file).paths
    return [str(paths[7]), str(paths[100])]


def test_search_equals_the_in_process_index(trained, loaded, tmp_path,
                                            capsys):
    """The same text and JSON, ties included, from the collection that
    encode loaded (not loaded again) and from a new one that search
    loads."""
    config, ckpt = trained
    out, uri = loaded
    images = sum((['--image', q] for q in queries(out)), [])
    expected_json = str(tmp_path / 'index.json')
    search_main([config, ckpt, '--index', out, *images, '--topk', '50',
                 '--out-json', expected_json])
    expected_text = capsys.readouterr().out
    with open(expected_json) as f:
        expected = json.load(f)
    # Ties decide most of the ranking: few distinct codes after one round.
    distances = [r['distance'] for r in expected['queries'][0]['results']]
    assert len(distances) - len(set(distances)) > 10
    for db, loads in ((uri, False), (str(tmp_path / 'new.db'), True)):
        out_json = str(tmp_path / 'milvus.json')
        proc = run_tool('search', config, ckpt, '--index', out, *images,
                        '--topk', '50', '--backend', 'milvus', '--uri', db,
                        '--out-json', out_json)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (f"1437 codes of {out} -> collection 'gallery'"
                in proc.stderr) == loads
        assert proc.stdout == expected_text
        with open(out_json) as f:
            assert json.load(f) == expected


def test_topk_over_the_milvus_limit_is_refused(trained, loaded):
    config, ckpt = trained
    out, uri = loaded
    proc = run_tool('search', config, ckpt, '--index', out, '--image',
                    queries(out)[0], '--topk', '16385', '--backend',
                    'milvus', '--uri', uri)
    assert error_line(proc) == (
        "error: --topk 16385 is over Milvus's limit of 16384 results per "
        'query; use --backend index for more')


def test_unreachable_server_fails_within_the_timeout(trained, loaded,
                                                     tmp_path):
    from test_milvus_index import closed_port
    config, ckpt = trained
    out, _ = loaded
    url = f'http://127.0.0.1:{closed_port()}'
    out_json = str(tmp_path / 'r.json')
    start = time.monotonic()
    proc = run_tool('search', config, ckpt, '--index', out, '--image',
                    queries(out)[0], '--backend', 'milvus', '--uri', url,
                    '--milvus-timeout', '1', '--out-json', out_json)
    assert error_line(proc).startswith(
        f'error: Milvus at {url}: cannot reach Milvus within 1 s')
    # Python, torch and the package load in most of it.
    assert time.monotonic() - start < 120
    assert not osp.exists(out_json)


def test_codes_of_another_model_or_length_are_refused(trained, loaded,
                                                      tmp_path):
    """The collection holds the model's 12-bit codes: a codes file of
    another checkpoint, or of 24 bits (another vector dimension), is
    refused naming what differs."""
    config, ckpt = trained
    out, uri = loaded
    gallery = load_codes(out)
    other = str(tmp_path / 'other.npz')
    save_codes(other, Codes(gallery.packed, 12, gallery.paths,
                            gallery.labels,
                            dict(gallery.meta, weights_sha256='0' * 64)))
    longer = str(tmp_path / 'longer.npz')
    bits = np.unpackbits(gallery.packed, axis=1)[:, :12]
    save_codes(longer, Codes(np.packbits(np.tile(bits, 2), axis=1), 24,
                             gallery.paths, gallery.labels,
                             dict(gallery.meta, nbits=24)))
    for codes, expected in (
            (other, f"error: collection 'gallery' at {uri} holds codes of "
             f"another model than '{other}' (weights_sha256: "),
            (longer, f"error: collection 'gallery' at {uri} holds 16-bit "
             f"vectors, but '{longer}' are 24-bit codes")):
        proc = run_tool('search', config, ckpt, '--index', codes, '--image',
                        queries(out)[0], '--backend', 'milvus', '--uri', uri,
                        '--collection', 'gallery')
        assert error_line(proc).startswith(expected)


def test_encode_refuses_an_existing_collection_before_encoding(
        trained, loaded, tmp_path):
    config, ckpt = trained
    _, uri = loaded
    out = str(tmp_path / 'gallery.npz')
    proc = run_tool('encode', config, ckpt, '--out', out, '--milvus-uri',
                    uri, '--no-progress')
    assert error_line(proc) == (
        f"error: collection 'gallery' at {uri} exists (1437 12-bit codes of "
        'HashRetriever/QueryHashHead); pass --replace-collection to replace '
        'it, or another --collection')
    assert not osp.exists(out)


def test_without_pymilvus_the_tools_say_what_to_install(
        trained, database, tmp_path):
    config, ckpt = trained
    fake = tmp_path / 'site' / 'pymilvus'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text(
        "raise ImportError('No module named pymilvus')\n")
    proc = run_tool(
        'search', config, ckpt, '--index', database, '--image',
        queries(database)[0], '--backend', 'milvus', '--uri',
        str(tmp_path / 'x.db'),
        env=dict(PYTHONPATH=f'{fake.parent}{os.pathsep}{REPO}'))
    assert error_line(proc) == ('error: the Milvus backend needs pymilvus: '
                                'pip install -e ".[milvus]"')
