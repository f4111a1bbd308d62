"""The binary index against a brute-force stable sort, and the codes file."""
import io
import json
import os.path as osp
import zipfile

import numpy as np
import pytest
import torch

from mmqueryopt.retrieval import index as index_module
from mmqueryopt.retrieval import (BinaryIndex, Codes, CodesFileError,
                                  check_same_model, load_codes, pack_codes,
                                  save_codes)


def random_bits(num, nbits, seed):
    return np.random.default_rng(seed).integers(0, 2, (num, nbits), np.uint8)


def brute_force(query_bits, gallery_bits):
    """``(Q, N)`` distances and the stable (distance, index) ranking."""
    distances = (query_bits[:, None, :] != gallery_bits[None]).sum(-1)
    return distances, np.argsort(distances, axis=1, kind='stable')


@pytest.mark.parametrize('nbits', [12, 24, 48, 64])
@pytest.mark.parametrize('packed', [False, True])
def test_search_equals_stable_sort(nbits, packed):
    gallery, queries = random_bits(3000, nbits, 0), random_bits(20, nbits, 1)
    # Duplicated items tie at every distance, whatever the code length.
    gallery[1000:1500] = gallery[:500]
    distances, order = brute_force(queries, gallery)
    if packed:
        index = BinaryIndex.from_codes(np.packbits(gallery, axis=1),
                                       nbits=nbits)
        indices, found = index.search(np.packbits(queries, axis=1),
                                      50,
                                      nbits=nbits)
    else:
        index = BinaryIndex.from_codes(gallery.astype(np.float32) * 2 - 1)
        indices, found = index.search(torch.from_numpy(queries), 50)
    np.testing.assert_array_equal(indices, order[:, :50])
    np.testing.assert_array_equal(
        found, np.take_along_axis(distances, order[:, :50], 1))
    assert indices.dtype == found.dtype == np.int64


def test_heavy_ties_and_k_beyond_the_gallery():
    # 4 bits, 2000 items: about 125 items per code, most of a top-k is ties.
    gallery, queries = random_bits(2000, 4, 2), random_bits(10, 4, 3)
    distances, order = brute_force(queries, gallery)
    index = BinaryIndex.from_codes(gallery)
    for k in (1, 7, 300, 2000):
        np.testing.assert_array_equal(
            index.search(queries, k)[0], order[:, :k])
    with pytest.warns(UserWarning, match='k=2500 is more than the 2000'):
        indices, _ = index.search(queries, 2500)
    np.testing.assert_array_equal(indices, order)


@pytest.mark.parametrize('nbits', [48, 130])
def test_blocks_and_codes_above_64_bits(monkeypatch, nbits):
    # Blocks of 64 items: distances are computed in 8 blocks, the last short.
    monkeypatch.setattr(index_module, '_BLOCK_ITEMS', 64)
    gallery, queries = random_bits(500, nbits, 4), random_bits(5, nbits, 5)
    distances, order = brute_force(queries, gallery)
    indices, found = BinaryIndex.from_codes(gallery).search(queries, 40)
    np.testing.assert_array_equal(indices, order[:, :40])
    np.testing.assert_array_equal(
        found, np.take_along_axis(distances, order[:, :40], 1))


@pytest.mark.parametrize('nbits', [12, 48])
def test_radius_search(nbits):
    gallery, queries = random_bits(3000, nbits, 6), random_bits(8, nbits, 7)
    gallery[:4] = queries[:4]
    distances, order = brute_force(queries, gallery)
    radius = nbits // 4
    results = BinaryIndex.from_codes(gallery).radius_search(queries, radius)
    assert len(results) == len(queries)
    for row, (indices, found) in enumerate(results):
        expected = order[row][distances[row, order[row]] <= radius]
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(found, distances[row, expected])
    assert len(results[0][0]) >= 1 and results[0][1][0] == 0


def test_add_then_search():
    gallery, queries = random_bits(900, 24, 8), random_bits(6, 24, 9)
    index = BinaryIndex.from_codes(gallery[:400], paths=['a'] * 400)
    index.add(np.packbits(gallery[400:], axis=1), nbits=24, paths=['b'] * 500)
    assert len(index) == 900 and index.paths.shape == (900, )
    _, order = brute_force(queries, gallery)
    np.testing.assert_array_equal(index.search(queries, 30)[0], order[:, :30])
    with pytest.raises(ValueError, match='must come with paths'):
        index.add(gallery[:3])


def test_code_length_mismatch_is_refused():
    index = BinaryIndex.from_codes(random_bits(100, 48, 10))
    with pytest.raises(ValueError,
                       match='12-bit codes but the index holds '
                       '48-bit'):
        index.search(random_bits(2, 12, 11), 5)
    # Packed rows without nbits= are bytes, not {0, 1} or {-1, +1} codes.
    with pytest.raises(ValueError, match='must hold binary codes'):
        index.search(np.packbits(random_bits(2, 48, 11), axis=1), 5)
    with pytest.raises(ValueError, match='24-bit codes'):
        index.add(random_bits(3, 24, 12))
    with pytest.raises(ValueError, match=r'shape \(N, 5\)'):
        index.search(np.packbits(random_bits(2, 48, 11), axis=1), 5, nbits=40)


def test_pack_codes_formats_agree():
    bits = random_bits(70000, 20, 13)  # more than one packing chunk
    expected = np.packbits(bits, axis=1)
    for codes, nbits in ((bits, None), (bits.astype(np.int8) * 2 - 1, None),
                         (torch.from_numpy(bits).bool(), None), (expected,
                                                                 20)):
        packed, found_nbits = pack_codes(codes, nbits=nbits)
        np.testing.assert_array_equal(packed, expected)
        assert found_nbits == 20
    # Padding bits of packed input are ignored, as the metric ignores them.
    dirty = expected.copy()
    dirty[:, -1] |= 0x0F
    np.testing.assert_array_equal(pack_codes(dirty, nbits=20)[0], expected)


def test_save_load_round_trip(tmp_path):
    bits = random_bits(300, 12, 14)
    labels = np.arange(300) % 7
    meta = dict(method='QueryOpt', weights_sha256='ab' * 32)
    paths = [f'photos/{i:04d}.jpg' for i in range(300)]
    index = BinaryIndex.from_codes(bits, paths=paths, labels=labels, meta=meta)
    file = str(tmp_path / 'gallery.npz')
    index.save(file)
    loaded = BinaryIndex.load(file)
    assert loaded.nbits == 12 and len(loaded) == 300
    np.testing.assert_array_equal(loaded.packed(), np.packbits(bits, 1))
    assert loaded.paths.tolist() == paths
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.meta == dict(meta, nbits=12)
    queries = random_bits(4, 12, 15)
    np.testing.assert_array_equal(
        loaded.search(queries, 20)[0],
        index.search(queries, 20)[0])
    # Two files of one model make one index, in order.
    both = BinaryIndex.load(file, file)
    assert len(both) == 600 and both.paths[300] == paths[0]
    codes = load_codes(file)
    assert codes.packed.dtype == np.uint8 and codes.packed.shape == (300, 2)


def test_save_needs_paths(tmp_path):
    index = BinaryIndex.from_codes(random_bits(5, 16, 16))
    with pytest.raises(ValueError, match='no image paths'):
        index.save(str(tmp_path / 'x.npz'))


def write_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path, 'wb') as f:
        f.write(buffer.getvalue())


def valid_arrays(num=4, nbits=12):
    return dict(codes=np.packbits(random_bits(num, nbits, 17), axis=1),
                nbits=np.int64(nbits),
                paths=np.array([f'{i}.jpg' for i in range(num)]),
                meta=np.array(json.dumps(dict(method='QueryOpt',
                                              nbits=nbits))))


@pytest.mark.parametrize('key', ['codes', 'nbits', 'paths', 'meta'])
def test_missing_key_is_named(tmp_path, key):
    arrays = valid_arrays()
    del arrays[key]
    file = str(tmp_path / 'codes.npz')
    write_npz(file, **arrays)
    with pytest.raises(CodesFileError, match=f"key '{key}': missing") as info:
        load_codes(file)
    assert info.value.path == file and file in str(info.value)


@pytest.mark.parametrize('key, value, message', [
    ('codes', np.zeros((4, 3), np.uint8), r'uint8 of shape \(N, 2\)'),
    ('paths', np.array(['a.jpg']), r'shape \(4,\)'),
    ('labels', np.zeros(3, np.int64), r'shape \(4,\)'),
    ('meta', np.array('[1, 2]'), 'JSON object'),
    ('meta', np.array(json.dumps(dict(nbits=24))), 'nbits=12'),
])
def test_wrong_shape_or_content_is_named(tmp_path, key, value, message):
    arrays = dict(valid_arrays(), **{key: value})
    file = str(tmp_path / 'codes.npz')
    write_npz(file, **arrays)
    with pytest.raises(CodesFileError, match=f"key '{key}'.*{message}"):
        load_codes(file)


def test_pickle_bearing_file_is_refused(tmp_path):
    file = str(tmp_path / 'evil.npz')
    arrays = valid_arrays()
    # An object array is stored as a pickle: loading it could run code.
    arrays['paths'] = np.array([object()] * 4, dtype=object)
    write_npz(file, **arrays)
    with pytest.raises(CodesFileError, match="key 'paths'.*allow_pickle"):
        load_codes(file)


def test_not_an_archive_is_refused(tmp_path):
    file = str(tmp_path / 'broken.npz')
    write_npz(file, **valid_arrays())
    with open(file, 'rb') as f:
        head = f.read(200)
    with open(file, 'wb') as f:
        f.write(head)
    with pytest.raises(CodesFileError, match='npz archive'):
        load_codes(file)
    with pytest.raises(FileNotFoundError):
        load_codes(str(tmp_path / 'absent.npz'))


def test_save_is_atomic_and_checked(tmp_path):
    file = str(tmp_path / 'codes.npz')
    codes = Codes(np.packbits(random_bits(3, 8, 18), axis=1),
                  8,
                  np.array(['a', 'b', 'c']),
                  meta=dict(method='QueryOpt'))
    save_codes(file, codes)
    assert zipfile.is_zipfile(file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['codes.npz']
    with pytest.raises(CodesFileError, match="key 'paths'"):
        save_codes(file, Codes(codes.packed, 8, np.array(['a'])))
    assert load_codes(file).paths.tolist() == ['a', 'b', 'c']
    assert osp.getsize(file) > 0


def test_other_model_is_refused(tmp_path):
    gallery = dict(method='QueryOpt', nbits=48, weights_sha256='aa')
    check_same_model(gallery, dict(gallery))
    with pytest.raises(ValueError, match="weights_sha256: 'aa' vs 'bb'"):
        check_same_model(gallery, dict(gallery, weights_sha256='bb'))
    file = str(tmp_path / 'a.npz')
    other = str(tmp_path / 'b.npz')
    BinaryIndex.from_codes(random_bits(3, 48, 19),
                           paths=['a'] * 3,
                           meta=gallery).save(file)
    BinaryIndex.from_codes(random_bits(3, 48, 20),
                           paths=['b'] * 3,
                           meta=dict(gallery, method='Other')).save(other)
    with pytest.raises(ValueError, match="method: 'QueryOpt' vs 'Other'"):
        BinaryIndex.load(file, other)
