"""HashRetriever's gallery ("prototype"), as MMPretrain's retrievers have
one: scores over the gallery, its encoding (one and two processes), its
codes file, and the checkpoint the weights came from."""
import copy
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.engine.hooks import PrepareProtoBeforeValLoopHook
from mmpretrain.models.retrievers import BaseRetriever
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.datasets import BrokenImageError
from mmqueryopt.fileio import MODEL_KEYS, load_codes
from mmqueryopt.models.prototype import (encode_prototype, hamming_scores,
                                         scores_to_distances)
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval import ImageListDataset, encode, model_meta

# 7 images over 2 ranks: DefaultSampler pads rank 1's share with image 0.
NUM_GALLERY = 7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def brute_force(query, gallery):
    """(Q, N) Hamming distances of ±1 codes, by counting differing bits."""
    return (query[:, None, :] != gallery[None, :, :]).sum(-1)


def ranked(distances):
    """Per query, gallery indices by (distance, index): a stable sort."""
    return np.argsort(distances, axis=1, kind='stable')


def test_scores_rank_by_distance_then_index():
    rng = np.random.default_rng(0)
    # 3 bits, 40 items: many ties at each distance.
    gallery = rng.choice([-1, 1], size=(40, 3))
    query = rng.choice([-1, 1], size=(5, 3))
    scores = hamming_scores(torch.from_numpy(query),
                            torch.from_numpy(gallery))
    assert scores.dtype == torch.float64 and scores.shape == (5, 40)
    distances = brute_force(query, gallery)
    np.testing.assert_array_equal(
        scores_to_distances(scores, 3).numpy(), distances)
    # torch.topk (not tie-stable on the CPU) returns the stable order.
    top, order = torch.topk(scores, k=40)
    np.testing.assert_array_equal(order.numpy(), ranked(distances))
    np.testing.assert_array_equal(
        scores_to_distances(top, 3).numpy(),
        np.take_along_axis(distances, ranked(distances), 1))
    # Hand-worked: K=3, N=40, item 2 at distance 1 scores 3 - 1 - 2/40.
    d = int(distances[0, 2])
    assert scores[0, 2].item() == pytest.approx(3 - d - 2 / 40, abs=1e-12)


@pytest.fixture(scope='module')
def tiny(digits_root, tmp_path_factory):
    """An untrained tiny digits model, its checkpoint and a gallery."""
    tmp = tmp_path_factory.mktemp('prototype')
    cfg = tiny_digits_cfg(digits_root, str(tmp / 'work'))
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    ckpt = str(tmp / 'weights.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    images = sorted(
        osp.join(root, name)
        for root, _, files in os.walk(osp.join(digits_root, 'images'))
        for name in files)[:NUM_GALLERY * 37:37]
    return cfg, model, ckpt, images, tmp


def loader(cfg, images, sampler=None, batch_size=3):
    dataset = ImageListDataset(images, cfg.test_dataloader.dataset.pipeline)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                      collate_fn=pseudo_collate)


def fresh(cfg, ckpt):
    """A model built as mmpretrain.get_model builds it, then loaded."""
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    return model.eval()


def test_is_a_retriever_the_val_hook_prepares(tiny):
    cfg, _, ckpt, images, _ = tiny
    model = fresh(cfg, ckpt)
    assert isinstance(model, BaseRetriever)
    model.prototype = loader(cfg, images)
    runner = type('Runner', (), dict(model=model))()
    PrepareProtoBeforeValLoopHook().before_val(runner)
    assert model.prototype_inited
    assert model.prototype_codes.shape == (NUM_GALLERY, 12)


def test_gallery_codes_are_the_encoders(tiny):
    cfg, model, ckpt, images, _ = tiny
    expected, _, _ = encode(model, loader(cfg, images), progress=False)
    codes, paths, _ = encode_prototype(model, loader(cfg, images))
    np.testing.assert_array_equal(codes.numpy(), expected)
    assert paths == images
    # Images of two sizes in one batch: each code as if encoded alone.
    small = str(tiny[4] / 'small.png')
    from PIL import Image
    Image.open(images[0]).resize((8, 8)).save(small)
    mixed = [images[1], small, images[2]]
    codes, _, _ = encode_prototype(model, loader(cfg, mixed))
    alone = [encode(model, loader(cfg, [p]), progress=False)[0][0]
             for p in mixed]
    np.testing.assert_array_equal(codes.numpy(), np.stack(alone))


def test_predict_scores_the_gallery_only_with_a_prototype(tiny):
    cfg, _, ckpt, images, _ = tiny
    model = fresh(cfg, ckpt)
    gallery, _, _ = encode(model, loader(cfg, images), progress=False)
    batch = next(iter(loader(cfg, images[:2])))
    data = model.data_preprocessor(batch, False)
    plain = model.predict(data['inputs'])
    # Training, validation and testing: codes alone, as before.
    assert 'pred_score' not in plain[0]
    model.prototype = torch.from_numpy(gallery).float()
    samples = model.predict(data['inputs'], [DataSample(), DataSample()])
    for sample, code in zip(samples, plain):
        assert torch.equal(sample.hash_code, code.hash_code)
        expected = brute_force(code.hash_code.numpy()[None], gallery)[0]
        np.testing.assert_array_equal(
            scores_to_distances(sample.pred_score, 12).numpy(), expected)
        assert np.argmax(sample.pred_score.numpy()) == ranked(
            expected[None])[0, 0]


def test_loaded_checkpoint_is_recorded(tiny):
    cfg, model, ckpt, _, _ = tiny
    loaded = fresh(cfg, ckpt)
    assert loaded.checkpoint_file == osp.abspath(ckpt)
    assert loaded.codes_meta() == {
        key: model_meta(model, ckpt)[key] for key in MODEL_KEYS}
    # Weights from anywhere else: no file to name.
    loaded.load_state_dict(model.state_dict())
    assert loaded.checkpoint_file is None


def test_dump_and_read_back_the_codes_file(tiny):
    cfg, _, ckpt, images, tmp = tiny
    model = fresh(cfg, ckpt)
    model.prototype = loader(cfg, images)
    path = str(tmp / 'gallery.npz')
    model.dump_prototype(path)
    codes = load_codes(path)
    # What tools/search.py compares against its model: equal.
    for key in MODEL_KEYS:
        assert codes.meta[key] == model_meta(model, ckpt)[key]
    assert codes.nbits == 12
    assert list(codes.paths) == images
    np.testing.assert_array_equal(codes.signs(),
                                  model.prototype_codes.numpy())
    other = fresh(cfg, ckpt)
    other.prototype = path
    other.prepare_prototype()
    assert torch.equal(other.prototype_codes, model.prototype_codes)


def test_codes_file_of_another_model_is_refused(tiny, tmp_path):
    cfg, _, ckpt, images, tmp = tiny
    model = fresh(cfg, ckpt)
    model.prototype = loader(cfg, images)
    path = str(tmp_path / 'gallery.npz')
    model.dump_prototype(path)
    # Another code length (and so another checkpoint).
    cfg16 = copy.deepcopy(cfg)
    cfg16.model.head.code_length = 24
    torch.manual_seed(0)
    long_model = MODELS.build(cfg16.model)
    ckpt16 = str(tmp_path / 'w24.pth')
    torch.save(dict(state_dict=long_model.state_dict()), ckpt16)
    long_model = fresh(cfg16, ckpt16)
    long_model.prototype = path
    with pytest.raises(ValueError) as error:
        long_model.prepare_prototype()
    message = str(error.value)
    assert '\n' not in message and path in message
    assert 'nbits: 12 vs 24' in message
    # Weights of no file: nothing to check the file against.
    untracked = MODELS.build(cfg.model).eval()
    untracked.prototype = path
    with pytest.raises(ValueError, match='not loaded from a checkpoint'):
        untracked.prepare_prototype()
    untracked.prototype = loader(cfg, images)
    with pytest.raises(ValueError, match='could not record'):
        untracked.dump_prototype(str(tmp_path / 'never.npz'))
    assert not osp.exists(tmp_path / 'never.npz')


def test_bad_galleries_are_one_line_naming_the_image(tiny, tmp_path):
    cfg, _, ckpt, images, _ = tiny
    model = fresh(cfg, ckpt)
    broken = str(tmp_path / 'broken.png')
    with open(images[0], 'rb') as src:
        content = src.read()
    with open(broken, 'wb') as dst:
        dst.write(content[:len(content) // 2])
    missing = str(tmp_path / 'missing.png')
    for bad, error in ((broken, BrokenImageError),
                       (missing, FileNotFoundError)):
        model.prototype = loader(cfg, images[:2] + [bad])
        with pytest.raises(error) as caught:
            model.prepare_prototype()
        assert bad in str(caught.value) and '\n' not in str(caught.value)
        assert not model.prototype_inited
    model.prototype = loader(cfg, [])
    with pytest.raises(ValueError, match='no images'):
        model.prepare_prototype()
    with pytest.raises(TypeError, match='prototype must be'):
        model.prototype = 3
    model.prototype = torch.ones(4, 7)
    with pytest.raises(ValueError, match=r'\(N, 12\)'):
        model.prepare_prototype()


TWO_RANKS = r'''
import os, sys
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run(rank, port, args):
    cfg_file, ckpt, images_file, out = args
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    from mmengine.config import Config
    from mmengine.dataset import DefaultSampler, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from torch.utils.data import DataLoader
    import mmqueryopt  # noqa
    from mmqueryopt.registry import MODELS
    from mmqueryopt.retrieval import ImageListDataset
    cfg = Config.fromfile(cfg_file)
    init_default_scope('mmqueryopt')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    images = open(images_file).read().split()
    dataset = ImageListDataset(images, cfg.test_dataloader.dataset.pipeline)
    sampler = DefaultSampler(dataset, shuffle=False, round_up=True)
    served = list(sampler)
    model.prototype = DataLoader(dataset, batch_size=2, sampler=sampler,
                                 collate_fn=pseudo_collate)
    model.prepare_prototype()
    # MMPretrain's way (ImageToImageRetriever): rows at the served
    # indices, then a summing all-reduce.
    summed = torch.zeros_like(model.prototype_codes)
    summed[served] = model.prototype_codes[served]
    dist.all_reduce(summed)
    torch.save(dict(codes=model.prototype_codes, served=served,
                    summed=summed), f'{out}.{rank}')
    dist.destroy_process_group()


if __name__ == '__main__':
    mp.spawn(run, args=(int(sys.argv[1]), sys.argv[2:]), nprocs=2)
'''


def test_two_processes_place_padded_samples_once(tiny, tmp_path):
    cfg, model, ckpt, images, _ = tiny
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    images_file = tmp_path / 'images.txt'
    images_file.write_text('\n'.join(images))
    script = tmp_path / 'two_ranks.py'
    script.write_text(TWO_RANKS)
    out = str(tmp_path / 'codes')
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, str(script), str(free_port()), config, ckpt,
         str(images_file), out], env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(f'{out}.{r}') for r in (0, 1)]
    # The case at issue: image 0 served by both ranks (padding).
    assert ranks[0]['served'] == [0, 2, 4, 6]
    assert ranks[1]['served'] == [1, 3, 5, 0]
    expected, _, _ = encode(model, loader(cfg, images), progress=False)
    for rank in ranks:
        np.testing.assert_array_equal(rank['codes'].numpy(), expected)
    # The summing all-reduce doubles image 0's code and no other.
    summed = ranks[0]['summed'].numpy()
    np.testing.assert_array_equal(summed[0], 2 * expected[0])
    np.testing.assert_array_equal(summed[1:], expected[1:])
