"""MilvusIndex against BinaryIndex and a brute-force Hamming ranking, on
Milvus Lite (one server per module: each start costs about a second)."""
import importlib.util
import os
import socket
import sys
import time

import numpy as np
import pytest

from mmqueryopt.retrieval import BinaryIndex, Codes
from mmqueryopt.retrieval import milvus_index as milvus_module
from mmqueryopt.retrieval.milvus_index import (MAX_TOPK, MilvusIndex,
                                               MilvusIndexError,
                                               default_collection,
                                               padded_dim)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec('pymilvus') is None
    or importlib.util.find_spec('milvus_lite') is None,
    reason='pymilvus and milvus-lite are not installed '
    '(pip install -e ".[milvus]")')
# A Milvus server to run the BIN_IVF_FLAT tests against (Milvus Lite has
# BIN_FLAT only), e.g. http://localhost:19530.
SERVER_URI = os.environ.get('MMQUERYOPT_MILVUS_URI')


def gallery_codes(num, nbits, seed, meta=None, with_paths=True):
    """Random codes with many ties: a third of the rows repeat earlier
    ones."""
    bits = np.random.default_rng(seed).integers(0, 2, (num, nbits), np.uint8)
    bits[num // 3:2 * (num // 3)] = bits[:num // 3]
    meta = {'method': 'HashRetriever/QueryHashHead', 'nbits': nbits,
            'weights_sha256': 'a' * 64, **(meta or {})}
    paths = (np.array([f'img/{i}.png' for i in range(num)])
             if with_paths else None)
    return bits, Codes(np.packbits(bits, axis=1), nbits, paths, None, meta)


def brute_force(query_bits, gallery_bits, k):
    """Distances from ``±1`` dot products in float64 and the (distance,
    index) ranking."""
    q = 2.0 * query_bits - 1
    g = 2.0 * gallery_bits - 1
    distances = (query_bits.shape[1] - q @ g.T) / 2
    order = np.lexsort((np.broadcast_to(np.arange(len(g)), distances.shape),
                        distances), axis=1)[:, :k]
    return order, np.take_along_axis(distances, order, 1).astype(np.int64)


@pytest.fixture(scope='module')
def lite(tmp_path_factory):
    """The module's Milvus Lite file (its server starts once)."""
    milvus_module.quiet_milvus_logs()
    return str(tmp_path_factory.mktemp('milvus') / 'lib.db')


@pytest.mark.parametrize('nbits', [12, 24, 32, 48, 61])
def test_search_equals_binary_index_and_brute_force(lite, nbits):
    bits, codes = gallery_codes(1500, nbits, nbits)
    queries = np.concatenate(
        [bits[[0, 7, 600, 1499]],
         np.random.default_rng(1).integers(0, 2, (6, nbits), np.uint8)])
    index = MilvusIndex(lite, f'codes_{nbits}')
    assert index.load_codes(codes, replace=True)
    assert len(index) == 1500 and index.nbits == nbits
    for k in (1, 40, 700):
        ids, distances = index.search(queries, k)
        expected_ids, expected_distances = brute_force(queries, bits, k)
        np.testing.assert_array_equal(distances, expected_distances)
        # Ties included: the same items in the same order.
        np.testing.assert_array_equal(ids, expected_ids)
        ours = BinaryIndex.from_codes(bits).search(queries, k)
        np.testing.assert_array_equal(ids, ours[0])
        np.testing.assert_array_equal(distances, ours[1])
        assert ids.dtype == distances.dtype == np.int64
    # Packed queries, as BinaryIndex takes them.
    packed = index.search(np.packbits(queries, axis=1), 40, nbits=nbits)
    np.testing.assert_array_equal(packed[0], index.search(queries, 40)[0])
    index.close()


def test_codes_are_padded_with_zero_bits(lite):
    """12-bit codes are 16-bit vectors whose last 4 bits are 0 in the
    stored rows and in the queries alike."""
    from pymilvus import Collection
    assert [padded_dim(n) for n in (1, 8, 12, 48, 61)] == [8, 8, 16, 48, 64]
    bits, codes = gallery_codes(30, 12, 0)
    index = MilvusIndex(lite, 'padded')
    index.load_codes(codes, replace=True)
    collection = Collection('padded', using=index._alias)
    field = next(f for f in collection.schema.fields if f.name == 'code')
    assert field.params['dim'] == 16
    rows = collection.query(expr='id in [0, 29]', output_fields=['code'])
    stored = {row['id']: bytes(row['code'][0]) for row in rows}
    assert stored[0] == codes.packed[0].tobytes()
    assert stored[29] == codes.packed[29].tobytes()
    assert stored[0][1] & 0x0F == 0  # the 4 padding bits
    # Hand-worked: item 0 against its own code with bit 11 flipped.
    query = bits[:1].copy()
    query[0, 11] ^= 1
    ids, distances = index.search(query, 30)
    assert distances[0, list(ids[0]).index(0)] == 1
    np.testing.assert_array_equal(distances, brute_force(query, bits, 30)[1])


def test_ties_come_back_in_index_order(lite):
    bits = np.zeros((40, 16), np.uint8)
    bits[::2, 0] = 1  # even rows at distance 1 from the zero code
    codes = Codes(np.packbits(bits, axis=1), 16,
                  np.array([str(i) for i in range(40)]), None,
                  dict(method='m', nbits=16, weights_sha256='b'))
    index = MilvusIndex(lite, 'ties')
    index.load_codes(codes, replace=True)
    ids, distances = index.search(np.zeros((1, 16), np.uint8), 25)
    assert list(ids[0]) == list(range(1, 40, 2)) + [0, 2, 4, 6, 8]
    assert list(distances[0]) == [0] * 20 + [1] * 5


def test_loading_again_inserts_nothing(lite):
    _, codes = gallery_codes(200, 24, 3)
    first = MilvusIndex(lite, 'twice')
    assert first.load_codes(codes, replace=True)
    assert not first.load_codes(codes)
    first.close()
    # A new connection finds the collection with its meta.
    again = MilvusIndex(lite, 'twice')
    assert again.exists and again.nbits == 24 and len(again) == 200
    assert again.meta['weights_sha256'] == 'a' * 64
    assert again.index_type == 'BIN_FLAT'
    assert not again.load_codes(codes)
    assert len(again) == 200


def test_codes_of_another_model_or_length_are_refused(lite):
    _, codes = gallery_codes(100, 12, 4)
    index = MilvusIndex(lite, 'model')
    index.load_codes(codes, replace=True)
    # Same vector dimension (16), other checkpoint or code length.
    _, other = gallery_codes(100, 12, 4, dict(weights_sha256='c' * 64))
    with pytest.raises(MilvusIndexError,
                       match="holds codes of another model.*weights_sha256"):
        index.load_codes(other, source="'other.npz'")
    _, shorter = gallery_codes(100, 10, 4)
    with pytest.raises(MilvusIndexError, match='another model.*nbits: 12 vs '
                       '10'):
        index.load_codes(shorter)
    # Another dimension: its own line.
    _, longer = gallery_codes(100, 24, 4)
    with pytest.raises(MilvusIndexError, match=r"collection 'model' at .*"
                       r"holds 16-bit vectors, but 'x' are 24-bit codes"):
        index.load_codes(longer, source="'x'")
    # Same model, other images.
    _, different = gallery_codes(100, 12, 5)
    with pytest.raises(MilvusIndexError, match='holds other codes of this '
                       'model .100 codes, not the 100 of'):
        index.load_codes(different)
    assert index.load_codes(different, replace=True)
    with pytest.raises(ValueError, match='query_codes are 10-bit codes but '
                       "collection 'model' holds 12-bit"):
        index.search(np.zeros((1, 10), np.uint8), 5)


def test_topk_over_the_limit_and_clamping(lite):
    bits, codes = gallery_codes(50, 12, 6)
    index = MilvusIndex(lite, 'limits')
    index.load_codes(codes, replace=True)
    with pytest.raises(MilvusIndexError, match='top-k 16385 is over '
                       "Milvus's limit of 16384"):
        index.search(bits[:1], MAX_TOPK + 1)
    with pytest.warns(UserWarning, match='k=60 is more than the 50 items'):
        ids, _ = index.search(bits[:1], 60)
    assert ids.shape == (1, 50)
    with pytest.raises(ValueError, match='k must be a positive int'):
        index.search(bits[:1], 0)


def test_an_interrupted_load_leaves_no_collection(lite, monkeypatch):
    _, codes = gallery_codes(100, 12, 7)
    index = MilvusIndex(lite, 'interrupted')
    monkeypatch.setattr(milvus_module, '_INSERT_ROWS', 30)
    calls = []
    original = index._milvus.Collection.insert

    def fail_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(index._milvus.Collection, 'insert', fail_second)
    with pytest.raises(KeyboardInterrupt):
        index.load_codes(codes, replace=True)
    assert not index.exists
    assert not MilvusIndex(lite, 'interrupted').exists
    # A process killed mid-load (nothing dropped it): refused until
    # replaced.
    monkeypatch.setattr(index._milvus.Collection, 'insert', original)
    monkeypatch.setattr(MilvusIndex, '_insert',
                        lambda self, packed: original(
                            self._collection,
                            [list(range(30)),
                             [row.tobytes() for row in packed[:30]]]))
    index.load_codes(codes)
    monkeypatch.undo()
    with pytest.raises(MilvusIndexError, match="collection 'interrupted' "
                       'at .* holds 30 of its 100 codes'):
        MilvusIndex(lite, 'interrupted').load_codes(codes)
    assert MilvusIndex(lite, 'interrupted').load_codes(codes, replace=True)


def test_a_foreign_collection_is_refused_and_not_dropped(lite):
    from pymilvus import (Collection, CollectionSchema, DataType,
                          FieldSchema)
    probe = MilvusIndex(lite, 'foreign')
    Collection('foreign', CollectionSchema([
        FieldSchema('pk', DataType.INT64, is_primary=True),
        FieldSchema('v', DataType.BINARY_VECTOR, dim=16)
    ], description='photos of someone else'), using=probe._alias)
    with pytest.raises(MilvusIndexError, match="collection 'foreign' at .* "
                       'was not written by mmqueryopt'):
        MilvusIndex(lite, 'foreign')
    assert probe._milvus.utility.has_collection('foreign',
                                                using=probe._alias)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unreachable_server_fails_within_the_timeout():
    uri = f'http://127.0.0.1:{closed_port()}'
    start = time.monotonic()
    with pytest.raises(MilvusIndexError, match=f'Milvus at {uri}: cannot '
                       'reach Milvus within 1 s'):
        MilvusIndex(uri, 'x', timeout=1)
    assert time.monotonic() - start < 10


def test_bad_uris_names_and_index_types(lite, tmp_path):
    with pytest.raises(MilvusIndexError, match="'codes.txt': expected a "
                       'Milvus Lite file ending in .db'):
        MilvusIndex('codes.txt', 'x')
    with pytest.raises(MilvusIndexError, match='at most 36 letters'):
        MilvusIndex(str(tmp_path / ('x' * 40 + '.db')), 'x')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MilvusIndex(str(tmp_path / 'missing' / 'a.db'), 'x')
    with pytest.raises(MilvusIndexError, match="collection name '1-x'"):
        MilvusIndex(lite, '1-x')
    _, codes = gallery_codes(20, 12, 8)
    index = MilvusIndex(lite, 'ivf')
    with pytest.raises(MilvusIndexError, match='Milvus Lite .* has BIN_FLAT '
                       'only; BIN_IVF_FLAT needs a Milvus server'):
        index.load_codes(codes, 'BIN_IVF_FLAT')
    with pytest.raises(MilvusIndexError, match="index type 'HNSW'"):
        index.load_codes(codes, 'HNSW')
    assert not index.exists
    assert default_collection('work/gallery-v2.1.npz') == 'gallery_v2_1'
    assert default_collection('7days.npz') == '_7days'


def test_missing_or_unusable_packages_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pymilvus', None)
    with pytest.raises(MilvusIndexError,
                       match=r'needs pymilvus: pip install -e "\.\[milvus\]"'):
        MilvusIndex('x.db', 'x')
    monkeypatch.delitem(sys.modules, 'pymilvus')
    monkeypatch.setattr(milvus_module.importlib.metadata, 'version',
                        lambda name: '3.2.2')
    with pytest.raises(MilvusIndexError, match='milvus-lite 3.2.2 has no '
                       'binary vectors'):
        MilvusIndex('x.db', 'x')


@pytest.mark.skipif(SERVER_URI is None,
                    reason='BIN_IVF_FLAT needs a Milvus server: set '
                    'MMQUERYOPT_MILVUS_URI=http://host:19530')
def test_ivf_with_every_cluster_probed_is_exact():
    bits, codes = gallery_codes(5000, 32, 9)
    index = MilvusIndex(SERVER_URI, 'mmqueryopt_test_ivf')
    try:
        index.load_codes(codes, 'BIN_IVF_FLAT', nlist=16, replace=True)
        assert index.index_type == 'BIN_IVF_FLAT'
        ids, distances = index.search(bits[:20], 100, nprobe=16)
        expected_ids, expected_distances = brute_force(bits[:20], bits, 100)
        np.testing.assert_array_equal(distances, expected_distances)
        np.testing.assert_array_equal(ids, expected_ids)
    finally:
        index.drop()
