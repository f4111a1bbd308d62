"""A web page where a photo goes in and its nearest gallery images come out.

``python tools/demo/retrieval_demo.py CONFIG CHECKPOINT --gallery DIR
[--port 7860] [--topk 10] [--codes CODES.npz] [--host 127.0.0.1]`` encodes
every image under DIR once (or loads ``--codes``, a codes file of DIR by
this model, e.g. from ``tools/encode.py --images DIR``; a ``--codes`` path
that does not exist yet is written after encoding), then serves a Gradio
page: upload a photo or pick a gallery image, and see its top-k neighbours
with their Hamming distances and gallery paths (ties in gallery order, as
``tools/search.py``), its code as a bit string, and, for models whose neck
or head has attention maps (QueryOpt's per-bit queries), each bit's
attention over the image. Needs the demo extra: ``pip install -e
".[demo]"``. See docs/demo.md.
"""
import os.path as osp
import sys

# tools/ for the OpenMP defaults (first, before torch loads OpenMP: see
# docs/speed.md) and visualize_attention's figure.
sys.path.insert(1, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: F401,E402  # isort: skip
import argparse  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
from typing import List, Optional  # noqa: E402

import mmqueryopt  # noqa: F401,E402  (registers every module)
from mmqueryopt.datasets import BrokenImageError  # noqa: E402
from mmqueryopt.engine.cli import (add_encoder_args,  # noqa: E402
                                   encoder_from_args, exit_on_user_error)
from mmqueryopt.retrieval import list_images  # noqa: E402

GRADIO_MISSING = ('error: the demo page needs gradio; install it with: '
                  'pip install -e ".[demo]"')
# Gallery images offered as examples to pick (the rest are still searched).
MAX_EXAMPLES = 20


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Serve a page that searches a gallery folder with a '
        'trained hashing model: a photo in, its nearest images out')
    add_encoder_args(parser, 'checkpoint file (loaded with '
                     'weights_only=True)')
    parser.add_argument(
        '--gallery', required=True, metavar='DIR',
        help='folder of gallery images, searched recursively')
    parser.add_argument(
        '--codes', metavar='CODES.npz',
        help='codes file of the gallery: loaded when it exists (refused '
        'unless this model encoded exactly the images of --gallery), else '
        'written after encoding')
    parser.add_argument(
        '--topk', type=int, default=10,
        help='neighbours shown at first (the page has a slider)')
    parser.add_argument(
        '--port', type=int, default=7860, help='port to serve on')
    parser.add_argument(
        '--host', default='127.0.0.1',
        help="address to serve on ('0.0.0.0': every network interface)")
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk must be at least 1')
    if not 1 <= args.port <= 65535:
        parser.error('--port must be in 1..65535')
    return args


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before any model work is spent."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(
                f'error: cannot serve on {host}:{port} ({error.strerror}); '
                f'choose another --port or --host') from None


def build_page(searcher, topk: int, overlay_dir: str):
    """The Gradio page over a :class:`GallerySearch`.

    Args:
        searcher (GallerySearch): The model and its gallery.
        topk (int): Neighbours shown at first.
        overlay_dir (str): Where attention figures are written.

    Returns:
        gradio.Blocks: The page (not launched).
    """
    import gradio as gr

    from gallery_search import bit_string

    def run(image: Optional[str], k: float):
        if image is None:
            raise gr.Error('upload a photo or pick a gallery image first')
        try:
            code, neighbours = searcher.search(image, int(k))
            overlay = None
            if searcher.no_attention is None:
                overlay = tempfile.NamedTemporaryFile(
                    suffix='.png', dir=overlay_dir, delete=False).name
                searcher.draw_attention(image, overlay)
        except (BrokenImageError, OSError) as error:
            raise gr.Error(f'cannot read this image: {error}')
        items = [(n.path, f'#{n.rank}  Hamming {n.distance}  {n.name}')
                 for n in neighbours]
        table = [[n.rank, n.distance, n.name] for n in neighbours]
        return bit_string(code), items, table, overlay

    def run_if_image(image: Optional[str], k: float):
        # Clearing the photo clears the results instead of complaining.
        return run(image, k) if image is not None else ('', [], [], None)

    title = 'mmqueryopt image search'
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(
            f'# {title}\n{len(searcher)} gallery images under '
            f'`{searcher.gallery}`, {searcher.nbits}-bit codes. Upload a '
            'photo or pick a gallery image; its nearest images are ranked '
            'by Hamming distance (ties in gallery order).')
        with gr.Row():
            with gr.Column(scale=1):
                # image_mode=None hands the uploaded file over as it is, so
                # the page encodes what tools/encode.py reads from it:
                # Gradio's default ('RGB') re-saves other modes and applies
                # EXIF rotation first, which the toolbox's loader does not.
                # PNG, not lossy WebP, for an upload without a file name.
                query = gr.Image(label='Query', type='filepath',
                                 image_mode=None, format='png',
                                 sources=['upload'], height=260,
                                 elem_id='query')
                k = gr.Slider(1, len(searcher), value=min(topk,
                                                          len(searcher)),
                              step=1, label='Neighbours', elem_id='topk')
                button = gr.Button('Search', variant='primary',
                                   elem_id='search')
                code = gr.Textbox(
                    label='Code (bit 0 first; 1 = +1, 0 = -1)',
                    interactive=False, elem_id='code')
            with gr.Column(scale=2):
                gallery = gr.Gallery(label='Nearest gallery images',
                                     columns=4, object_fit='contain',
                                     height='auto', elem_id='neighbours')
                table = gr.Dataframe(
                    headers=['rank', 'Hamming distance', 'image'],
                    datatype=['number', 'number', 'str'],
                    interactive=False, label='Results',
                    elem_id='results')
        with gr.Column():
            if searcher.no_attention is None:
                gr.Markdown('**Bit attention**: the image as the model saw '
                            'it, then each bit\'s map over it, titled with '
                            'the bit and its relaxed value.')
                overlay = gr.Image(type='filepath', interactive=False,
                                   show_label=False, elem_id='attention')
            else:
                overlay = gr.Image(visible=False, elem_id='attention')
                gr.Markdown(f'No attention overlay: '
                            f'{searcher.no_attention}.')
        outputs = [code, gallery, table, overlay]
        # A new photo (uploaded or picked below) is searched at once; the
        # button searches again, e.g. after moving the slider.
        query.change(run_if_image, inputs=[query, k], outputs=outputs)
        button.click(run, inputs=[query, k], outputs=outputs)
        # Spread over the gallery's sorted order: every class folder shows.
        picks = sorted({i * len(searcher) // MAX_EXAMPLES
                        for i in range(MAX_EXAMPLES)})
        gr.Examples(
            examples=[[searcher.paths[i]] for i in picks],
            inputs=[query],
            label='Gallery images (click one to search with it)',
            examples_per_page=MAX_EXAMPLES, elem_id='examples')
    return page


def main(argv: Optional[List[str]] = None) -> None:
    """Check everything, encode the gallery, then serve until stopped."""
    args = parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise SystemExit(GRADIO_MISSING) from None
    try:
        # The folder first: a seconds-long model build would be wasted.
        list_images(args.gallery)
    except (NotADirectoryError, ValueError) as error:
        raise SystemExit(f'error: --gallery: {error}') from None
    check_port(args.host, args.port)
    cfg, model = encoder_from_args(args)
    from gallery_search import GallerySearch
    try:
        # exit_on_user_error: an unreadable image names itself.
        with exit_on_user_error():
            searcher = GallerySearch(cfg, model, args.checkpoint,
                                     args.gallery, args.codes)
    except (NotADirectoryError, ValueError) as error:
        # Also CodesFileError: another model's or another folder's codes.
        raise SystemExit(f'error: {error}') from None
    print(f'{len(searcher)} gallery images, {searcher.nbits}-bit codes; '
          f'serving http://{args.host}:{args.port}', file=sys.stderr,
          flush=True)
    with tempfile.TemporaryDirectory(prefix='retrieval_demo_') as overlays:
        page = build_page(searcher, args.topk, overlays)
        page.queue().launch(server_name=args.host, server_port=args.port,
                            allowed_paths=[searcher.gallery, overlays],
                            show_error=True, quiet=True)


if __name__ == '__main__':
    main()
