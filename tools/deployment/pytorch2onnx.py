"""Export a trained hashing model to ONNX, to encode images without PyTorch.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx
    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out m.onnx \\
        --shape 32 32 --verify data/digits/images

The graph takes float32 ``images`` (N, 3, H, W), RGB in 0-255 (the config's
channel order, mean and std are inside it), with a free batch axis, and
gives ``codes`` (N, k) int8 in {-1, +1} (+1 where the relaxed value is
>= 0, as ``tools/encode.py``) and ``relaxed`` (N, k) float32. Its
``metadata_props`` hold the model's meta as codes files do (method, nbits,
weights_sha256, config), so codes computed with it can be checked against a
gallery's. H x W defaults to the size the config's test pipeline crops to.

Before writing, the graph is run with onnxruntime on random images and must
give PyTorch's codes; ``--verify`` adds a report on given images (or
``--verify-num`` random ones). ``--out`` is written only at the end, whole.
Needs the optional extra: ``pip install -e ".[onnx]"``.
"""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import os.path as osp  # isort: skip
import sys  # isort: skip
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: F401,E402  # isort: skip
import argparse  # noqa: E402
import importlib  # noqa: E402
from typing import List, Optional  # noqa: E402

import mmqueryopt  # noqa: F401,E402  (registers every module)
from mmqueryopt.deployment import (DEFAULT_OPSET, OnnxExportError,  # noqa
                                   check_against_pytorch, export_onnx,
                                   image_size_from_config, onnx_session,
                                   random_bgr, save_onnx)
from mmqueryopt.engine.cli import (USER_ERRORS, add_cfg_options,  # noqa
                                   read_config, user_error_line,
                                   user_error_message)
from mmqueryopt.retrieval.encoder import (ImageListDataset,  # noqa: E402
                                          build_encoder, list_images,
                                          model_meta)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a hashing model (preprocessing, encoder, codes '
        'with ties to +1) to ONNX')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', help='checkpoint file (loaded with weights_only=True)')
    parser.add_argument('--out', required=True, help='.onnx file to write')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help="input height and width (default: the config's test "
        'pipeline crop)')
    parser.add_argument(
        '--opset', type=int,
        help=f'ONNX opset (default {DEFAULT_OPSET[False]}; '
        f'{DEFAULT_OPSET[True]} with --dynamo)')
    parser.add_argument(
        '--dynamo', action='store_true',
        help="use torch.export (torch's default exporter; needs "
        'onnxscript, slower) instead of tracing')
    parser.add_argument(
        '--dynamic-batch', action=argparse.BooleanOptionalAction,
        default=True, help='leave the batch axis free (default: on)')
    parser.add_argument(
        '--verify', nargs='*', metavar='IMAGE_OR_DIR',
        help='compare onnxruntime with PyTorch and print the report: on '
        'these images (read with the test pipeline; folders searched '
        'recursively) or, given no path, on --verify-num random images')
    parser.add_argument(
        '--verify-num', type=int, default=8,
        help='random images for a bare --verify (default 8)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def _missing_packages(dynamo: bool) -> List[str]:
    """The optional packages the export needs that do not import."""
    missing = []
    for name in ['onnx', 'onnxruntime'] + (['onnxscript'] if dynamo else []):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _verify_images(paths: List[str], cfg, size) -> list:
    """The ``--verify`` images as the test pipeline gives them (uint8 BGR),
    each of the export's size."""
    files = []
    for path in paths:
        if osp.isdir(path):
            files.extend(list_images(path))
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'--verify {path!r}: no such file or '
                                    f'folder')
    dataset = ImageListDataset(files, cfg.test_dataloader.dataset.pipeline)
    images = []
    for index, path in enumerate(files):
        image = dataset[index]['inputs']
        if tuple(image.shape[-2:]) != tuple(size):
            raise ValueError(
                f'--verify {path}: the test pipeline gives '
                f'{image.shape[-2]}x{image.shape[-1]}, the export is '
                f'{size[0]}x{size[1]} (--shape)')
        images.append(image)
    return images


def main(argv: Optional[List[str]] = None) -> None:
    """Run the tool: export, check, then write ``--out``."""
    args = parse_args(argv)
    missing = _missing_packages(args.dynamo)
    if missing:
        raise SystemExit(
            f'error: ONNX export needs {", ".join(missing)}: '
            f'pip install -e ".[onnx]"')
    if args.verify_num < 1:
        raise SystemExit('error: --verify-num must be at least 1')
    try:
        cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
        size = tuple(args.shape) if args.shape else image_size_from_config(
            cfg)
        if size is None:
            raise ValueError(
                f"{args.config}: the test pipeline keeps each image's own "
                f'size (no CenterCrop or fixed Resize); give --shape H W')
        if min(size) < 1:
            raise ValueError(f'--shape {size[0]} {size[1]}: must be positive')
        # The checkpoint first: a bad one fails before any export work.
        model = build_encoder(cfg, args.checkpoint, 'cpu')
        images = (_verify_images(args.verify, cfg, size)
                  if args.verify else None)
        proto = export_onnx(
            model, size, model_meta(model, args.checkpoint, args.config),
            opset=args.opset, dynamic_batch=args.dynamic_batch,
            dynamo=args.dynamo)
        report = None
        if args.verify is not None:
            if images is None:
                images = random_bgr(args.verify_num, *size, seed=2)
            report = check_against_pytorch(
                onnx_session(proto.SerializeToString()), model, images)
    except (*USER_ERRORS, OnnxExportError, ValueError, TypeError) as exc:
        # One line naming the file, key or module at fault; --out is
        # written only at the end, so nothing is left there.
        line = user_error_line(exc)
        if line is None and isinstance(exc, TypeError):
            raise
        raise SystemExit(line or f'error: {user_error_message(exc)}')
    if report is not None:
        print(f'verify: {report.summary()}', file=sys.stderr)
        if not report.ok:
            raise SystemExit(
                f'error: onnxruntime disagrees with PyTorch '
                f'({report.summary()}); {args.out} not written')
    save_onnx(proto, args.out)
    print(f'{args.out}: {model.code_length}-bit codes of '
          f'{size[0]}x{size[1]} RGB images, batch '
          f'{"dynamic" if args.dynamic_batch else 1}, opset '
          f'{_opset(proto)}', file=sys.stderr)


def _opset(proto) -> int:
    return next(entry.version for entry in proto.opset_import
                if entry.domain in ('', 'ai.onnx'))


if __name__ == '__main__':
    main()
