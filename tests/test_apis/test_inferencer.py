"""MMPretrain's ImageRetrievalInferencer with our models (issue #25): its
neighbours are our Hamming neighbours, its prototype cache is our codes
file, and our model names work with get_model / list_models.

The model: the digits ADSH config (configs/adsh/adsh_digits_12bit.py) with
random weights whose hash layer's bias puts each bit's threshold in the
widest gap amid its values over the gallery, so that each bit splits the
gallery and distances vary
(a tiny trained digits model gives every image one code). Its test
pipeline is the config's own: ``LoadImageBGR`` reads the gallery and passes
on the queries the inferencer decodes itself.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain import get_model, list_models
from mmpretrain.apis import ImageRetrievalInferencer
from torch.utils.data import DataLoader

from conftest import REPO
from mmqueryopt.datasets import BrokenImageError
from mmqueryopt.fileio import MODEL_KEYS, CodesFileError, load_codes
from mmqueryopt.model_index import registered_names
from mmqueryopt.models import HashRetriever
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval import (BinaryIndex, ImageListDataset,
                                  build_encoder, encode, model_meta)

CONFIG = osp.join(REPO, 'configs/adsh/adsh_digits_12bit.py')
NAME = 'adsh_resnet18-cifar_1xb16_digits-12bit'
K = 12


def digits_images(digits_root, step):
    return sorted(
        osp.join(root, name)
        for root, _, files in os.walk(osp.join(digits_root, 'images'))
        for name in files)[::step]


def our_codes(config, ckpt, paths):
    """The codes tools/encode.py would give (our encoder)."""
    cfg = Config.fromfile(config)
    model = build_encoder(cfg, ckpt)
    loader = DataLoader(
        ImageListDataset(paths, cfg.test_dataloader.dataset.pipeline),
        batch_size=16, collate_fn=pseudo_collate)
    return encode(model, loader, progress=False)[0]


@pytest.fixture(scope='module')
def files(digits_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('inferencer')
    # The config's own test pipeline (LoadImageBGR): the inferencer decodes
    # queries itself, our loader reads the gallery.
    cfg = Config.fromfile(CONFIG)
    config = str(tmp / 'adsh_digits_12bit.py')
    cfg.dump(config)
    gallery = tmp / 'gallery'
    gallery.mkdir()
    for path in digits_images(digits_root, 60):
        shutil.copy(path, gallery / osp.basename(path))
    paths = sorted(str(p) for p in gallery.iterdir())
    queries = digits_images(digits_root, 97)[:3] + [paths[4]]
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    dataset = ImageListDataset(paths + queries[:3],
                               cfg.test_dataloader.dataset.pipeline)
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, False)['inputs']
        pooled = model.neck(model.backbone(inputs))
        pooled = pooled[-1] if isinstance(pooled, tuple) else pooled
        # Each bit's threshold in the widest gap between the middle half
        # of its values over the gallery and the queries: the bits split
        # the images, and no image sits so close to a threshold that
        # another runtime's rounding (ONNX's) flips its bit.
        values = model.head.fc(pooled).sort(0).values
        n = len(values)
        middle = values[n // 4:3 * n // 4 + 1]
        gaps = middle[1:] - middle[:-1]
        widest = gaps.argmax(0)
        bits = torch.arange(values.shape[1])
        model.head.fc.bias -= (middle[widest, bits] +
                               middle[widest + 1, bits]) / 2
    ckpt = str(tmp / 'adsh_balanced.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return dict(config=config, ckpt=ckpt, gallery=str(gallery),
                paths=paths, queries=queries, tmp=tmp, digits=digits_root)


def inferencer(files, prototype, **kwargs):
    return ImageRetrievalInferencer(files['config'], prototype=prototype,
                                    pretrained=files['ckpt'], device='cpu',
                                    **kwargs)


def check_against_brute_force(files, infer):
    dataset = infer.prototype_dataset
    gallery_paths = [dataset.get_data_info(i)['img_path']
                     for i in range(len(dataset))]
    gallery = our_codes(files['config'], files['ckpt'], gallery_paths)
    queries = our_codes(files['config'], files['ckpt'], files['queries'])
    distances = (queries[:, None, :] != gallery[None, :, :]).sum(-1)
    # Not every item at one distance: the ranking is tested.
    assert len(np.unique(distances)) >= 3
    results = infer(files['queries'], topk=len(gallery))
    for row, matches in enumerate(results):
        order = [m['sample_idx'] for m in matches]
        expected = np.argsort(distances[row], kind='stable')
        np.testing.assert_array_equal(order, expected)
        scores = torch.stack([m['match_score'] for m in matches])
        assert (scores[1:] < scores[:-1]).all()
        np.testing.assert_array_equal(
            K - np.ceil(scores.numpy()), distances[row][expected])
        assert [m['sample']['img_path'] for m in matches] == [
            gallery_paths[i] for i in expected]
    return results


def test_folder_prototype(files):
    infer = inferencer(files, files['gallery'])
    assert isinstance(infer.model, HashRetriever)
    results = check_against_brute_force(files, infer)
    # The gallery image itself is first, at distance 0.
    assert results[3][0]['sample']['img_path'] == files['paths'][4]
    assert results[3][0]['match_score'] > K - 1


def test_inferencer_by_model_name(files):
    """The three lines of docs/inference.md: a model by its name in our
    model index."""
    infer = ImageRetrievalInferencer(NAME, prototype=files['gallery'],
                                     pretrained=files['ckpt'], device='cpu')
    check_against_brute_force(files, infer)


def test_list_prototype(files):
    check_against_brute_force(files,
                              inferencer(files, files['paths'][::-1]))


def test_dataset_config_prototype(files):
    prototype = dict(type='mmqueryopt.CUB200', data_root=files['digits'],
                     split='test', warn_size=False)
    infer = inferencer(files, prototype)
    assert len(infer.prototype_dataset) == 360
    check_against_brute_force(files, infer)


def test_prototype_cache_is_our_codes_file(files, tmp_path):
    cache = str(tmp_path / 'gallery.npz')
    first = inferencer(files, files['gallery'], prototype_cache=cache)
    codes = load_codes(cache)
    expected_meta = model_meta(first.model, files['ckpt'])
    assert {key: codes.meta[key] for key in MODEL_KEYS} == {
        key: expected_meta[key] for key in MODEL_KEYS}
    assert codes.meta['config'] == 'adsh_digits_12bit'
    assert list(codes.paths) == files['paths']
    np.testing.assert_array_equal(
        codes.signs(), our_codes(files['config'], files['ckpt'],
                                 files['paths']))
    second = inferencer(files, files['gallery'], prototype_cache=cache)
    assert second.model.prototype == cache  # read, not encoded
    expected = first(files['queries'], topk=10)
    got = second(files['queries'], topk=10)
    for a, b in zip(expected, got):
        assert [m['sample_idx'] for m in a] == [m['sample_idx'] for m in b]
        assert [m['match_score'].item() for m in a] == [
            m['match_score'].item() for m in b]
    # The same file serves tools/search.py: the same distances.
    out = str(tmp_path / 'search.json')
    proc = subprocess.run(
        [sys.executable, 'tools/search.py', files['config'], files['ckpt'],
         '--index', cache, '--image', files['queries'][0], '--topk', '10',
         '--out-json', out], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out) as f:
        searched = json.load(f)['queries'][0]['results']
    assert [r['index'] for r in searched] == [
        m['sample_idx'] for m in expected[0]]
    assert [r['distance'] for r in searched] == [
        K - int(np.ceil(m['match_score'].item())) for m in expected[0]]
    index = BinaryIndex.load(cache)
    assert index.nbits == K and len(index) == len(files['paths'])


def test_cache_of_other_weights_is_refused(files, tmp_path):
    cache = str(tmp_path / 'gallery.npz')
    inferencer(files, files['gallery'], prototype_cache=cache)
    other = dict(torch.load(files['ckpt']))
    other['state_dict'] = {k: v + 1e-3 if v.is_floating_point() else v
                           for k, v in other['state_dict'].items()}
    other_ckpt = str(tmp_path / 'other.pth')
    torch.save(other, other_ckpt)
    with pytest.raises(ValueError) as error:
        ImageRetrievalInferencer(files['config'], prototype=files['gallery'],
                                 prototype_cache=cache,
                                 pretrained=other_ckpt, device='cpu')
    message = str(error.value)
    assert '\n' not in message and cache in message
    assert 'weights_sha256' in message


def test_bad_prototypes_are_one_line(files, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(RuntimeError) as error:  # MMPretrain's CustomDataset
        inferencer(files, str(empty))
    assert str(empty) in str(error.value)
    broken_dir = tmp_path / 'broken'
    shutil.copytree(files['gallery'], broken_dir)
    broken = broken_dir / 'zz_broken.png'
    broken.write_bytes(open(files['paths'][0], 'rb').read()[:60])
    with pytest.raises(BrokenImageError) as error:
        inferencer(files, str(broken_dir))
    assert str(broken) in str(error.value)
    assert '\n' not in str(error.value)
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(files, files['paths'][:3] + [missing])
    not_codes = tmp_path / 'cache.npz'
    not_codes.write_text('not an archive')
    with pytest.raises(CodesFileError) as error:
        inferencer(files, files['gallery'], prototype_cache=str(not_codes))
    assert str(not_codes) in str(error.value)


def test_model_names_reach_mmpretrain(files):
    names = registered_names()
    retrieval = list_models(task='Image Retrieval')
    assert NAME in names and set(names) <= set(retrieval)
    assert set(ImageRetrievalInferencer.list_models()) == set(retrieval)
    assert ImageRetrievalInferencer.list_models('adsh_*digits*') == [NAME]
    model = get_model(NAME, pretrained=files['ckpt'])
    assert isinstance(model, HashRetriever) and model.code_length == K
    assert model.checkpoint_file == files['ckpt']
    expected = torch.load(files['ckpt'])['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
