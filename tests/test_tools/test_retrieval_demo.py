"""tools/demo/retrieval_demo.py (issue #25, the demo page): the search
behind the page against brute-force Hamming distances of the encoder's codes,
the codes-file reuse and its checks, the attention overlay, one-line errors
for bad input, and the page itself driven in headless Chromium.

Two models: the tiny QueryOpt digits model trained here (the page's usual
case, with per-bit attention maps), whose codes after a tiny run are one
code for every image, and an A2-Net digits model at its seeded
initialisation, whose codes of a gallery with inverted digits differ, so
that distances and their ranking are checked on more than zeros.
"""
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image, ImageOps

from conftest import REPO, train_tiny_run
from encode import main as encode_main
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval import build_encoder, load_codes, save_codes
from mmqueryopt.retrieval.grid import grid_size

sys.path.insert(0, osp.join(REPO, 'tools', 'demo'))
from gallery_search import GallerySearch, bit_string  # noqa: E402

TOOL = osp.join(REPO, 'tools', 'demo', 'retrieval_demo.py')


def copy_digits(digits_root, out, per_class):
    """The first ``per_class`` images of each digit, in class folders."""
    images = osp.join(digits_root, 'images')
    for name in sorted(os.listdir(images)):
        os.makedirs(osp.join(out, name))
        for file in sorted(os.listdir(osp.join(images, name)))[:per_class]:
            shutil.copy(osp.join(images, name, file),
                        osp.join(out, name, file))
    return out


@pytest.fixture(scope='module')
def digits_gallery(digits_root, tmp_path_factory):
    """30 exported digits, three of each class."""
    return copy_digits(digits_root,
                       str(tmp_path_factory.mktemp('demo') / 'gallery'), 3)


@pytest.fixture(scope='module')
def queryopt(digits_root, tmp_path_factory):
    """(config file, checkpoint) of the tiny QueryOpt model, one round."""
    run = train_tiny_run(digits_root,
                         str(tmp_path_factory.mktemp('demo_queryopt')),
                         'tiny_digits')
    return run.config, run.ckpt


def initialised(name, tmp):
    """(config file, checkpoint) of a digits config's model at its seeded
    initialisation (no training: the page only needs a fixed encoder)."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', name, f'{name}_digits_12bit.py'))
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    config, ckpt = str(tmp / f'{name}.py'), str(tmp / f'{name}.pth')
    cfg.dump(config)
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return config, ckpt


@pytest.fixture(scope='module')
def a2net(digits_root, tmp_path_factory):
    """(config, checkpoint, gallery): A2-Net at initialisation and 20
    digits plus 10 of them inverted, whose codes differ. The inverted ones
    are greyscale PNGs, which a page must pass on as they are."""
    tmp = tmp_path_factory.mktemp('demo_a2net')
    gallery = copy_digits(digits_root, str(tmp / 'gallery'), 2)
    os.makedirs(osp.join(gallery, 'inverted'))
    for n, name in enumerate(sorted(os.listdir(gallery))[:10]):
        file = sorted(os.listdir(osp.join(gallery, name)))[0]
        with Image.open(osp.join(gallery, name, file)) as img:
            ImageOps.invert(img.convert('L')).save(
                osp.join(gallery, 'inverted', f'{n}_{file}'))
    return (*initialised('a2net', tmp), gallery)


def encoder_codes(config, ckpt, folder, out):
    """±1 codes of every image under ``folder`` by tools/encode.py (the
    encoder's codes, independently of the demo), and their paths."""
    encode_main([config, ckpt, '--images', folder, '--out', out,
                 '--no-progress'])
    codes = load_codes(out)
    bits = np.unpackbits(codes.packed, axis=1)[:, :codes.nbits]
    return 2 * bits.astype(np.int64) - 1, [str(p) for p in codes.paths]


def brute_force(gallery_codes, query_code):
    """Hamming distances and the (distance, gallery order) ranking."""
    distances = (gallery_codes != query_code[None]).sum(axis=1)
    order = np.lexsort((np.arange(len(distances)), distances))
    return distances, order


def searcher(config, ckpt, gallery, codes=None):
    cfg = Config.fromfile(config)
    return GallerySearch(cfg, build_encoder(cfg, ckpt), ckpt, gallery,
                         codes)


# ------------------------------------------------------- search, no page

@pytest.mark.parametrize('which', ['queryopt', 'a2net'])
def test_search_equals_brute_force_hamming(which, request, digits_gallery,
                                           digits_root, tmp_path):
    if which == 'queryopt':
        config, ckpt = request.getfixturevalue('queryopt')
        gallery = digits_gallery
    else:
        config, ckpt, gallery = request.getfixturevalue('a2net')
    codes, paths = encoder_codes(config, ckpt, gallery,
                                 str(tmp_path / 'gallery.npz'))
    demo = searcher(config, ckpt, gallery)
    assert demo.paths == paths and len(demo) == 30 and demo.nbits == 12
    if which == 'a2net':
        # Else the distances below would all be 0 and prove little.
        assert len({row.tobytes() for row in codes}) >= 8
    for row in (0, 7, 29):
        code, found = demo.search(paths[row], 30)
        assert np.array_equal(code, codes[row])
        distances, order = brute_force(codes, codes[row])
        assert [n.index for n in found] == order.tolist()
        assert [n.distance for n in found] == distances[order].tolist()
        assert [n.rank for n in found] == list(range(1, 31))
        assert [n.path for n in found] == [paths[i] for i in order]
        # Its own image at distance 0, first of all when its code is
        # unique, else among the tied ones in gallery order.
        assert found[0].distance == 0
        assert row in [n.index for n in found if n.distance == 0]
        top5 = demo.search(paths[row], 5)[1]
        assert top5 == found[:5]
        assert found[0].name == osp.relpath(paths[order[0]], gallery)
    # An image outside the gallery (a query-split digit).
    outside = str(tmp_path / 'outside')
    src = osp.join(digits_root, 'images', '004.digit_3')
    os.makedirs(outside)
    shutil.copy(osp.join(src, sorted(os.listdir(src))[-1]), outside)
    (query, ), (query_path, ) = encoder_codes(config, ckpt, outside,
                                              str(tmp_path / 'q.npz'))
    code, found = demo.search(query_path, 30)
    assert np.array_equal(code, query)
    distances, order = brute_force(codes, query)
    assert [(n.index, n.distance) for n in found] == list(
        zip(order.tolist(), distances[order].tolist()))


def test_bit_string():
    code = np.array([1, -1, -1, 1, 1, 1, -1, 1, -1, 1], np.int8)
    assert bit_string(code) == '10011101 01'


def test_codes_file_is_written_then_reused_and_checked(queryopt,
                                                       digits_gallery,
                                                       tmp_path):
    config, ckpt = queryopt
    cache = str(tmp_path / 'gallery_codes.npz')
    first = searcher(config, ckpt, digits_gallery, cache)
    written = load_codes(cache)
    encode_main([config, ckpt, '--images', digits_gallery, '--out',
                 str(tmp_path / 'by_tool.npz'), '--no-progress'])
    expected = load_codes(str(tmp_path / 'by_tool.npz'))
    assert np.array_equal(written.packed, expected.packed)
    assert list(written.paths) == list(expected.paths)
    assert written.meta['weights_sha256'] == \
        expected.meta['weights_sha256']
    # Reused: the file's codes are what the index holds, even where they
    # differ from what the model would compute.
    every_bit = np.packbits(np.ones((1, written.nbits), np.uint8), axis=1)
    flipped = written.packed ^ every_bit
    save_codes(cache, replace(written, packed=flipped))
    again = searcher(config, ckpt, digits_gallery, cache)
    assert np.array_equal(again.index.packed(), flipped)
    assert len(first) == len(again) == 30
    # Another checkpoint's codes.
    save_codes(cache, replace(
        written, meta=dict(written.meta, weights_sha256='0' * 64)))
    with pytest.raises(ValueError, match=re.escape(repr(cache)) +
                       '.*weights_sha256'):
        searcher(config, ckpt, digits_gallery, cache)
    # Codes of another folder: one image fewer.
    save_codes(cache, replace(written, packed=written.packed[:-1],
                              paths=written.paths[:-1]))
    with pytest.raises(ValueError, match='does not encode the images of '
                       '.*29 images there, 30 here'):
        searcher(config, ckpt, digits_gallery, cache)


def test_attention_overlay_or_why_not(queryopt, digits_gallery, tmp_path):
    config, ckpt = queryopt
    demo = searcher(config, ckpt, digits_gallery)
    assert demo.no_attention is None
    out = str(tmp_path / 'overlay.png')
    assert demo.draw_attention(demo.paths[3], out)
    with Image.open(out) as img:
        # The image and one map per bit, 7 cells a row.
        assert img.format == 'PNG' and img.size == grid_size(13, 112, 7)
    # HashNet's pooled features have no attention maps: said, not drawn.
    hashnet = initialised('hashnet', tmp_path)
    plain = searcher(*hashnet, digits_gallery)
    assert 'has no attention maps' in plain.no_attention
    assert not plain.draw_attention(plain.paths[0],
                                    str(tmp_path / 'none.png'))
    assert not osp.exists(tmp_path / 'none.png')


def test_page_of_a_model_without_attention(digits_gallery, tmp_path):
    """The page's search function returns no figure, the figure is hidden
    and the page says why."""
    gr = pytest.importorskip('gradio', reason='the demo extra (gradio) is '
                             'not installed: pip install -e ".[demo]"')
    from retrieval_demo import build_page
    demo = searcher(*initialised('hashnet', tmp_path), digits_gallery)
    overlays = tmp_path / 'overlays'
    overlays.mkdir()
    page = build_page(demo, 5, str(overlays))
    blocks = list(page.blocks.values())
    (hidden, ) = [b for b in blocks if b.elem_id == 'attention']
    assert hidden.visible is False
    assert any(isinstance(b, gr.Markdown) and 'No attention overlay: this '
               'model has no attention maps' in b.value for b in blocks)
    (run, ) = [f.fn for f in page.fns.values() if f.fn.__name__ == 'run']
    code, items, table, overlay = run(demo.paths[4], 5)
    expected, found = demo.search(demo.paths[4], 5)
    assert code == bit_string(expected) and overlay is None
    assert table == [[n.rank, n.distance, n.name] for n in found]
    assert items == [(n.path, f'#{n.rank}  Hamming {n.distance}  {n.name}')
                     for n in found]
    assert not os.listdir(overlays)
    # A photo it cannot read: a message on the page, the server goes on.
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with pytest.raises(gr.Error, match='cannot read this image: .*'
                       + re.escape(str(broken))):
        run(str(broken), 5)


# ------------------------------------------------- the tool, bad input

def fail(*args, env=None):
    """Run the tool, which must refuse; its one error line."""
    env = {**os.environ, 'PYTHONPATH': REPO, **(env or {})}
    proc = subprocess.run([sys.executable, TOOL, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def test_without_gradio_is_one_line(queryopt, digits_gallery, tmp_path):
    config, ckpt = queryopt
    # A package that fails to import as a missing one does.
    fake = tmp_path / 'site' / 'gradio'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text(
        "raise ModuleNotFoundError(\"No module named 'gradio'\")\n")
    line = fail(config, ckpt, '--gallery', digits_gallery,
                env=dict(PYTHONPATH=f'{tmp_path / "site"}{os.pathsep}{REPO}'))
    assert line == ('error: the demo page needs gradio; install it with: '
                    'pip install -e ".[demo]"')


def test_bad_input_is_one_line(queryopt, digits_gallery, tmp_path):
    # The tool asks for gradio first (the cheapest check; without it that
    # is the line every run gets: test_without_gradio_is_one_line).
    pytest.importorskip('gradio', reason='the demo extra (gradio) is not '
                        'installed: the tool stops at that first')
    config, ckpt = queryopt
    missing = str(tmp_path / 'no_such_folder')
    assert fail(config, ckpt, '--gallery', missing) == (
        f"error: --gallery: --images {missing!r} is not a folder")
    empty = tmp_path / 'empty'
    (empty / 'sub').mkdir(parents=True)
    (empty / 'notes.txt').write_text('no images here')
    line = fail(config, ckpt, '--gallery', str(empty))
    assert line.startswith('error: --gallery: no image files')
    assert repr(str(empty)) in line
    broken = tmp_path / 'broken'
    shutil.copytree(digits_gallery, broken)
    bad = broken / '005.digit_4' / 'bad.png'
    bad.write_bytes(b'not a png')
    line = fail(config, ckpt, '--gallery', str(broken))
    assert str(bad) in line
    no_ckpt = str(tmp_path / 'no_such.pth')
    line = fail(config, no_ckpt, '--gallery', digits_gallery)
    assert no_ckpt in line
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = fail(config, ckpt, '--gallery', digits_gallery, '--port',
                    str(port))
    assert line.startswith(f'error: cannot serve on 127.0.0.1:{port} ')


# ------------------------------------------------ the page, in Chromium

def chromium_path():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_for_page(proc, url, deadline):
    """Poll ``url`` until it answers, the server dies or time runs out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f'the demo exited with {proc.returncode}: '
                        f'{proc.stderr.read()[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f'the demo did not answer at {url} in time')


def stop(proc):
    """End the server's process group; SIGKILL if SIGTERM is not enough."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def read_results(page):
    """(caption, image URL) of each neighbour shown, in page order."""
    return page.eval_on_selector_all(
        '#neighbours .thumbnail-item',
        'items => items.map(item => [item.querySelector(".caption-label")'
        '.textContent, item.querySelector("img").src])')


CAPTION = re.compile(r'^#(\d+)\s+Hamming (\d+)\s+(\S+)$')


@pytest.mark.parametrize('which', ['queryopt', 'a2net'])
def test_page_in_headless_chromium(which, request, digits_gallery,
                                   tmp_path):
    pytest.importorskip('gradio', reason='the demo extra (gradio) is not '
                        'installed: pip install -e ".[demo]"')
    playwright = pytest.importorskip(
        'playwright.sync_api', reason='playwright drives the browser: pip '
        'install playwright')
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip('no Chromium to drive (apt-get install chromium)')
    if which == 'queryopt':
        config, ckpt = request.getfixturevalue('queryopt')
        gallery = digits_gallery
    else:
        config, ckpt, gallery = request.getfixturevalue('a2net')
    codes, paths = encoder_codes(config, ckpt, gallery,
                                 str(tmp_path / 'gallery.npz'))
    # A greyscale one (inverted/) for A2-Net.
    row = 13 if which == 'queryopt' else 25
    distances, order = brute_force(codes, codes[row])
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO, GRADIO_ANALYTICS_ENABLED='False')
    proc = subprocess.Popen(
        [sys.executable, TOOL, config, ckpt, '--gallery', gallery, '--port',
         str(port), '--topk', '30'], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        url = f'http://127.0.0.1:{port}/'
        wait_for_page(proc, url, time.monotonic() + 240)
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=browser_path, headless=True,
                args=['--no-sandbox'])
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                page.set_input_files('#query input[type=file]', paths[row])
                page.wait_for_function(
                    "document.querySelector('#code textarea')"
                    ".value.length > 0")
                page.wait_for_function(
                    "document.querySelectorAll('#neighbours "
                    ".thumbnail-item').length == 30")
                assert page.input_value('#code textarea') == bit_string(
                    codes[row])
                shown = []
                for caption, src in read_results(page):
                    rank, distance, name = CAPTION.match(caption).groups()
                    shown.append((int(rank), int(distance), name, src))
                assert [s[:3] for s in shown] == [
                    (rank, int(distances[i]), osp.relpath(paths[i], gallery))
                    for rank, i in enumerate(order.tolist(), 1)
                ]
                own = osp.relpath(paths[row], gallery)
                (mine, ) = [s for s in shown if s[2] == own]
                assert mine[1] == 0
                # The picture shown for it is the gallery file itself.
                served = page.request.get(mine[3]).body()
                with open(paths[row], 'rb') as f:
                    assert served == f.read()
                # Both models have attention maps (QueryOpt's bit queries,
                # A2-Net's attention neck): the figure is on the page.
                page.locator('#attention img').wait_for(state='visible')
                # Picking a gallery image below searches with it: the 20
                # examples spread over the gallery, so the 3rd is row 3.
                previous = read_results(page)
                page.locator('#examples button.gallery-item').nth(2).click()
                page.wait_for_function(
                    'src => document.querySelector("#neighbours img").src'
                    ' != src || document.querySelector("#code textarea")'
                    f'.value == {bit_string(codes[3])!r}', arg=previous[0][1])
                page.wait_for_function(
                    "document.querySelectorAll('#neighbours "
                    ".thumbnail-item').length == 30")
                distances, order = brute_force(codes, codes[3])
                assert page.input_value('#code textarea') == bit_string(
                    codes[3])
                assert [CAPTION.match(caption).groups()[1:]
                        for caption, _ in read_results(page)] == [
                    (str(distances[i]), osp.relpath(paths[i], gallery))
                    for i in order]
            finally:
                browser.close()
    finally:
        stop(proc)
