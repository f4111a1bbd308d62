"""tools/encode.py and tools/search.py, called in-process on a tiny trained
digits model."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import train_tiny_run
from encode import main as encode_main
from mmqueryopt.retrieval import Codes, load_codes, save_codes
from mmqueryopt.retrieval.grid import RIGHT, WRONG, grid_size
from search import main as search_main


def _border_colours(img):
    """Which of the grid's right/wrong border colours the image shows."""
    pixels = np.asarray(img.convert('RGB')).reshape(-1, 3)
    found = set()
    for name, colour in (('right', RIGHT), ('wrong', WRONG)):
        rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        if (np.abs(pixels.astype(int) - rgb).max(axis=1) <= 2).sum() > 50:
            found.add(name)
    return found


@pytest.fixture(scope='module')
def trained(digits_root, tmp_path_factory):
    """(config file, checkpoint) of a model trained for one tiny round."""
    run = train_tiny_run(digits_root,
                         str(tmp_path_factory.mktemp('search_tools')),
                         'tiny_digits')
    return run.config, run.ckpt


@pytest.fixture(scope='module')
def database(trained, tmp_path_factory):
    config, ckpt = trained
    out = str(tmp_path_factory.mktemp('codes') / 'database.npz')
    encode_main([config, ckpt, '--out', out, '--batch-size', '64'])
    return out


def test_encode_database_split(trained, database, digits_root):
    codes = load_codes(database)
    assert codes.nbits == 12 and codes.packed.shape == (1437, 2)
    assert codes.labels is not None and codes.labels.shape == (1437, )
    assert all(osp.isabs(p) and osp.isfile(p) for p in codes.paths[:5])
    assert codes.meta['method'] == 'HashRetriever/QueryHashHead'
    assert codes.meta['config'] == 'tiny_digits'
    assert len(codes.meta['weights_sha256']) == 64


def test_search_finds_the_query_at_distance_0(trained, database, tmp_path):
    config, ckpt = trained
    gallery = load_codes(database)
    query = str(gallery.paths[7])
    out_json, show_dir = str(tmp_path / 'r.json'), str(tmp_path / 'show')
    result = search_main([
        config, ckpt, '--index', database, '--image', query, '--image',
        str(gallery.paths[100]), '--topk', '10', '--out-json', out_json,
        '--show-dir', show_dir, '--thumb-size', '40', '--ncols', '4'
    ])
    first = result['queries'][0]
    assert first['results'][0]['distance'] == 0
    tied = [r['path'] for r in first['results'] if r['distance'] == 0]
    # With ties in index order, the query is among the distance-0 items
    # unless more than topk items share its code.
    assert query in tied or len(tied) == 10
    assert first['label'] == int(gallery.labels[7])
    with open(out_json) as f:
        saved = json.load(f)
    assert saved == result
    assert set(saved) == {'index', 'nbits', 'topk', 'queries'}
    assert saved['topk'] == 10 and len(saved['queries']) == 2
    assert set(first) == {'query', 'path', 'label', 'results'}
    assert set(first['results'][0]) == {'rank', 'distance', 'index', 'path',
                                        'label'}
    assert [r['rank'] for r in first['results']] == list(range(1, 11))
    distances = [r['distance'] for r in first['results']]
    assert distances == sorted(distances)
    pngs = sorted(os.listdir(show_dir))
    assert len(pngs) == 2 and pngs[0].startswith('000_')
    for name in pngs:
        with Image.open(osp.join(show_dir, name)) as img:
            img.verify()
        with Image.open(osp.join(show_dir, name)) as img:
            assert img.format == 'PNG'
            assert img.size == grid_size(11, 40, 4)  # query + 10: 4 x 3
            # The queries are gallery images with labels: every result has
            # a green or a red border.
            colours = _border_colours(img)
            assert colours and colours <= {'right', 'wrong'}


def test_topk_larger_than_gallery_is_clamped(trained, tmp_path):
    config, ckpt = trained
    images = tmp_path / 'few'
    images.mkdir()
    Image.new('RGB', (16, 16), 'red').save(images / 'a.png')
    Image.new('RGB', (16, 16), 'blue').save(images / 'b.jpg')
    out = str(tmp_path / 'few.npz')
    encode_main([config, ckpt, '--images', str(images), '--out', out])
    show_dir = tmp_path / 'show'
    with pytest.warns(UserWarning, match='k=5'):
        result = search_main([config, ckpt, '--index', out, '--image',
                              str(images / 'a.png'), '--topk', '5',
                              '--show-dir', str(show_dir)])
    assert result['topk'] == 2 and len(result['queries'][0]['results']) == 2
    # No labels in this index: neutral borders only.
    assert result['queries'][0]['label'] is None
    with Image.open(show_dir / '000_a.png') as img:
        assert img.size == grid_size(3) and not _border_colours(img)


def test_encode_folder_recursively(trained, digits_root, tmp_path):
    config, ckpt = trained
    source = osp.join(digits_root, 'images')
    files = sorted(
        osp.join(root, name) for root, _, names in os.walk(source)
        for name in names)[:5]
    folder = tmp_path / 'photos'
    (folder / 'nested' / 'deeper').mkdir(parents=True)
    shutil.copy(files[0], folder / 'top.jpg')
    for i, path in enumerate(files[1:3]):
        shutil.copy(path, folder / 'nested' / f'n{i}.jpg')
    shutil.copy(files[3], folder / 'nested' / 'deeper' / 'd.png')
    (folder / 'notes.txt').write_text('not an image')
    out = str(tmp_path / 'photos.npz')
    encode_main([config, ckpt, '--images', str(folder), '--out', out,
                 '--batch-size', '2', '--no-progress'])
    codes = load_codes(out)
    names = sorted(osp.relpath(p, str(folder)) for p in codes.paths)
    assert names == ['nested/deeper/d.png', 'nested/n0.jpg', 'nested/n1.jpg',
                     'top.jpg']
    assert codes.labels is None and codes.packed.shape == (4, 2)
    # A gallery image found by its own code.
    result = search_main([config, ckpt, '--index', out, '--image',
                          str(folder / 'top.jpg'), '--topk', '4'])
    hit = [r for r in result['queries'][0]['results']
           if r['path'] == str(folder / 'top.jpg')]
    assert hit and hit[0]['distance'] == 0


def test_codes_do_not_depend_on_batching(trained, tmp_path):
    """Images of different sizes are not padded to their batch's largest."""
    config, ckpt = trained
    folder = tmp_path / 'sizes'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate((16, 32, 16, 24)):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f'{i}.png')
    packed = []
    for batch_size in ('1', '4'):
        out = str(tmp_path / f'b{batch_size}.npz')
        encode_main([config, ckpt, '--images', str(folder), '--out', out,
                     '--batch-size', batch_size, '--no-progress'])
        packed.append(load_codes(out).packed)
    np.testing.assert_array_equal(packed[0], packed[1])


def test_mismatched_index_is_refused(trained, database, tmp_path, capsys):
    config, ckpt = trained
    gallery = load_codes(database)
    query = str(gallery.paths[0])
    other_hash = str(tmp_path / 'other_hash.npz')
    save_codes(other_hash, Codes(gallery.packed, gallery.nbits, gallery.paths,
                                 gallery.labels,
                                 dict(gallery.meta, weights_sha256='0' * 64)))
    other_bits = str(tmp_path / 'other_bits.npz')
    bits = np.unpackbits(gallery.packed, axis=1)[:, :12]
    save_codes(other_bits, Codes(np.packbits(bits[:, :8], axis=1), 8,
                                 gallery.paths, gallery.labels,
                                 dict(gallery.meta, nbits=8)))
    for index, key in ((other_hash, 'weights_sha256'),
                       (other_bits, 'nbits')):
        out_json = str(tmp_path / 'r.json')
        with pytest.raises(SystemExit) as exit_info:
            search_main([config, ckpt, '--index', index, '--image', query,
                         '--out-json', out_json])
        message = str(exit_info.value.code)
        assert message.startswith('error: ') and key in message
        assert 're-encode' in message
        assert not osp.exists(out_json)


def test_empty_folder_and_bad_files_are_clear_errors(trained, database,
                                                     tmp_path):
    config, ckpt = trained
    empty = tmp_path / 'empty'
    (empty / 'sub').mkdir(parents=True)
    (empty / 'sub' / 'readme.txt').write_text('no images here')
    out = str(tmp_path / 'out.npz')
    with pytest.raises(SystemExit) as exit_info:
        encode_main([config, ckpt, '--images', str(empty), '--out', out])
    assert 'no image files' in str(exit_info.value.code)
    assert str(empty) in str(exit_info.value.code)
    assert not osp.exists(out)

    # A broken image read by a worker process: one line naming it, not the
    # worker's traceback.
    broken = tmp_path / 'broken'
    broken.mkdir()
    Image.new('RGB', (16, 16)).save(broken / 'good.png')
    (broken / 'bad.jpg').write_text('not a JPEG')
    with pytest.raises(SystemExit) as exit_info:
        encode_main([config, ckpt, '--images', str(broken), '--out', out,
                     '--num-workers', '1', '--no-progress'])
    message = str(exit_info.value.code)
    assert message.startswith('error: Cannot decode image ')
    assert str(broken / 'bad.jpg') in message and '\n' not in message
    assert not osp.exists(out)

    bad_ckpt = tmp_path / 'bad.pth'
    bad_ckpt.write_bytes(b'not a checkpoint at all')
    with pytest.raises(SystemExit) as exit_info:
        encode_main([config, str(bad_ckpt), '--out', out])
    assert str(bad_ckpt) in str(exit_info.value.code)
    assert not osp.exists(out)

    fake = tmp_path / 'fake.jpg'
    fake.write_text('this is text, not a JPEG')
    out_json, show_dir = str(tmp_path / 'r.json'), str(tmp_path / 'show')
    for query in (str(fake), str(tmp_path / 'missing.jpg')):
        with pytest.raises(SystemExit) as exit_info:
            search_main([config, ckpt, '--index', database, '--image', query,
                         '--out-json', out_json, '--show-dir', show_dir])
        message = str(exit_info.value.code)
        assert message.startswith('error: ') and query in message
        assert not osp.exists(out_json) and not osp.exists(show_dir)


def torchrun_encode(*args):
    """``tools/encode.py`` in two torchrun processes (gloo on CPUs)."""
    import subprocess
    import sys

    from conftest import REPO
    from test_distributed import free_port
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(free_port()), 'tools/encode.py', *args,
         '--launcher', 'pytorch', '--no-progress'],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))


def test_encode_under_torchrun_equals_one_process(trained, database,
                                                  tmp_path):
    """Two gloo processes each encode every other image; rank 0 writes
    the same file as one process would."""
    config, ckpt = trained
    out = str(tmp_path / 'dist.npz')
    proc = torchrun_encode(config, ckpt, '--out', out, '--batch-size', '50')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '1437 codes of 12 bits with labels' in proc.stderr
    ours, single = load_codes(out), load_codes(database)
    np.testing.assert_array_equal(ours.packed, single.packed)
    np.testing.assert_array_equal(ours.labels, single.labels)
    assert list(ours.paths) == list(single.paths)
    assert ours.meta == single.meta


def test_encode_under_torchrun_stops_every_rank_on_a_bad_image(
        trained, tmp_path):
    """The broken image is in one rank's share only; the other rank must
    not wait for it forever, and nothing is written."""
    config, ckpt = trained
    folder = tmp_path / 'photos'
    folder.mkdir()
    for i in range(3):
        Image.new('RGB', (16, 16), (40 * i, 0, 0)).save(folder / f'{i}.png')
    (folder / '3.jpg').write_text('not a JPEG')
    out = str(tmp_path / 'dist.npz')
    proc = torchrun_encode(config, ckpt, '--images', str(folder), '--out',
                           out)
    assert proc.returncode != 0
    assert f'error: Cannot decode image {folder / "3.jpg"}' in proc.stderr
    assert not osp.exists(out)
