"""mmqueryopt.apis.HashSearcher: codes and Hamming search by model name or
config, against a brute-force count over our encoder's codes."""
import numpy as np
import pytest

from mmqueryopt.apis import HashSearcher
from mmqueryopt.retrieval import BinaryIndex
from test_inferencer import K, NAME, files, our_codes  # noqa: F401


def brute_force(files, gallery_paths, query_paths):  # noqa: F811
    gallery = our_codes(files['config'], files['ckpt'], gallery_paths)
    queries = our_codes(files['config'], files['ckpt'], query_paths)
    return (queries[:, None, :] != gallery[None, :, :]).sum(-1)


def check_search(searcher, files, gallery_paths):  # noqa: F811
    distances = brute_force(files, gallery_paths, files['queries'])
    results = searcher.search(files['queries'], topk=len(gallery_paths))
    for row, items in enumerate(results):
        expected = np.argsort(distances[row], kind='stable')
        assert [item['index'] for item in items] == expected.tolist()
        assert [item['distance'] for item in items] == \
            distances[row][expected].tolist()
        assert [item['path'] for item in items] == [
            gallery_paths[i] for i in expected]
        assert [item['rank'] for item in items] == list(
            range(1, len(gallery_paths) + 1))


@pytest.fixture(scope='module')
def searcher(files):  # noqa: F811
    return HashSearcher(files['config'], files['ckpt'], device='cpu')


def test_codes_are_the_encoders(searcher, files):  # noqa: F811
    assert searcher.code_length == K
    np.testing.assert_array_equal(
        searcher.codes(files['queries']),
        our_codes(files['config'], files['ckpt'], files['queries']))
    assert searcher.codes(files['queries'][0]).shape == (1, K)


def test_folder_list_and_codes_file_galleries(
        searcher, files, tmp_path):  # noqa: F811
    index = searcher.build_index(files['gallery'])
    assert list(index.paths) == files['paths']
    check_search(searcher, files, files['paths'])
    reversed_paths = files['paths'][::-1]
    searcher.build_index(reversed_paths)
    check_search(searcher, files, reversed_paths)
    path = str(tmp_path / 'gallery.npz')
    searcher.index.save(path)
    searcher.build_index(path)
    check_search(searcher, files, reversed_paths)
    # Another checkpoint's codes file: refused, naming it.
    other = BinaryIndex.load(path)
    other.meta['weights_sha256'] = '0' * 64
    other_path = str(tmp_path / 'other.npz')
    other.save(other_path)
    with pytest.raises(ValueError) as error:
        searcher.build_index(other_path)
    assert other_path in str(error.value)
    assert 'weights_sha256' in str(error.value)


def test_by_model_name(files):  # noqa: F811
    by_name = HashSearcher(NAME, files['ckpt'], device='cpu')
    assert by_name.meta['config'] == 'adsh_digits_12bit'
    by_name.build_index(files['gallery'])
    check_search(by_name, files, files['paths'])


def test_bad_input_is_one_line(searcher, files, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="'no_such_model' is neither"):
        HashSearcher('no_such_model', files['ckpt'])
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        HashSearcher(str(tmp_path / 'nowhere.py'), files['ckpt'])
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError, match='missing.png'):
        searcher.codes([files['queries'][0], missing])
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no image files'):
        searcher.build_index(str(empty))
    fresh = HashSearcher(files['config'], files['ckpt'], device='cpu')
    with pytest.raises(RuntimeError, match='build_index'):
        fresh.search(files['queries'][0])
