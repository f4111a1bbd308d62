"""CPU encode throughput: onnxruntime against PyTorch on the same graph.

Each model (a config at an input size, random weights: speed does not
depend on them) is exported with :func:`mmqueryopt.deployment.export_onnx`
(tracing, opset 17) and both runtimes encode the same random batch of
float32 RGB images into codes: PyTorch runs
:class:`~mmqueryopt.deployment.OnnxEncoder` (the data preprocessor's
arithmetic, the encoder, the sign; eval mode, ``torch.inference_mode``),
onnxruntime the exported graph (CPU provider, all graph optimisations).
A cell is the median time of a batch over at least ``--repeats`` runs and
``--min-seconds``, after one warm-up run, as images per second; ``same
codes`` says whether both gave the same codes for the timed batch.

Example::

    python benchmarks/onnx_encode_throughput.py
    python benchmarks/onnx_encode_throughput.py \\
        --models configs/queryopt/queryopt_digits_12bit.py:32x32 \\
        --batch-sizes 1 64 --threads 1 2
"""
# As the tools, before torch loads OpenMP: threads that wait sleep instead
# of spinning, which on a busy machine cost PyTorch's 2-thread runs up to
# 20x here (docs/speed.md, "Threads on a busy machine").
import os.path as osp  # isort: skip
import sys  # isort: skip
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))
import openmp_env  # noqa: F401,E402  # isort: skip
import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_data import cpu_model  # noqa: E402
DEFAULT_MODELS = ('configs/queryopt/queryopt_digits_12bit.py:32x32',
                  'configs/queryopt/queryopt_cub_12bit.py:224x224')
HEADER = ('| model | input | batch | threads | PyTorch | onnxruntime | '
          'onnxruntime / PyTorch | same codes |')


def parse_model(spec: str) -> Tuple[str, Tuple[int, int]]:
    """``CONFIG:HxW`` -> (config path, (H, W))."""
    config, _, size = spec.rpartition(':')
    try:
        height, width = (int(v) for v in size.lower().split('x'))
    except ValueError:
        raise SystemExit(f'error: --models {spec!r}: expected CONFIG:HxW, '
                         f'e.g. configs/queryopt/queryopt_cub_12bit.py:'
                         f'224x224') from None
    return config, (height, width)


def median_seconds(run: Callable[[], object], repeats: int,
                   min_seconds: float) -> float:
    """Median wall time of ``run()`` after one warm-up call."""
    run()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def build(config: str):
    """The config's model at random init, in eval mode."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmqueryopt  # noqa: F401  (registers every module)
    from mmqueryopt.registry import MODELS
    cfg = Config.fromfile(config if osp.isabs(config) else osp.join(
        REPO, config))
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


def measure(config: str, size: Tuple[int, int], batch_sizes: List[int],
            threads: List[int], repeats: int,
            min_seconds: float) -> Dict[Tuple[int, int], dict]:
    """Images per second of both runtimes for every batch size and thread
    count.

    Returns:
        dict: ``(batch, threads) -> {'pytorch', 'onnxruntime', 'same'}``.
    """
    from mmqueryopt.deployment import (OnnxEncoder, export_onnx,
                                       onnx_session, run_onnx)
    model = build(config)
    proto = export_onnx(model, size, check=False).SerializeToString()
    encoder = OnnxEncoder(model)
    rng = np.random.default_rng(0)
    results = {}
    saved_threads = torch.get_num_threads()
    try:
        for num_threads in threads:
            torch.set_num_threads(num_threads)
            session = onnx_session(proto, threads=num_threads)
            for batch in batch_sizes:
                images = rng.integers(0, 256, (batch, 3, *size)).astype(
                    np.float32)
                tensor = torch.from_numpy(images)

                def pytorch():
                    with torch.inference_mode():
                        return encoder(tensor)

                def onnxruntime():
                    return run_onnx(session, images)

                same = np.array_equal(pytorch()[0].numpy(),
                                      onnxruntime()[0])
                results[(batch, num_threads)] = dict(
                    pytorch=batch / median_seconds(pytorch, repeats,
                                                   min_seconds),
                    onnxruntime=batch / median_seconds(
                        onnxruntime, repeats, min_seconds),
                    same=same)
    finally:
        torch.set_num_threads(saved_threads)
    return results


def table_rows(name: str, size: Tuple[int, int], results: dict) -> List[str]:
    rows = []
    for (batch, threads), cell in sorted(results.items(),
                                         key=lambda item: (item[0][1],
                                                           item[0][0])):
        rows.append(
            f'| {name} | {size[0]}x{size[1]} | {batch} | {threads} | '
            f'{cell["pytorch"]:,.1f} img/s | {cell["onnxruntime"]:,.1f} '
            f'img/s | {cell["onnxruntime"] / cell["pytorch"]:.2f} | '
            f'{"yes" if cell["same"] else "no"} |')
    return rows


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models', nargs='+', default=list(DEFAULT_MODELS),
        metavar='CONFIG:HxW', help='configs and input sizes (default: the '
        'digits QueryOpt model at 32x32, QueryOpt CUB 12-bit at 224x224)')
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[1, 8, 32])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs at least (default 3)')
    parser.add_argument('--min-seconds', type=float, default=2.0,
                        help='timed seconds at least per cell (default 2)')
    args = parser.parse_args(argv)
    models = [(spec, *parse_model(spec)) for spec in args.models]
    import onnxruntime
    print(f'CPU: {cpu_model()}, {torch.get_num_threads()} threads '
          f'available; torch {torch.__version__}, onnxruntime '
          f'{onnxruntime.__version__}', file=sys.stderr)
    measured = {}
    print(HEADER)
    print('|' + '---|' * HEADER.count(' | ') + '---|')
    for spec, config, size in models:
        results = measure(config, size, args.batch_sizes, args.threads,
                          args.repeats, args.min_seconds)
        name = osp.splitext(osp.basename(config))[0]
        for row in table_rows(name, size, results):
            print(row, flush=True)
        measured[spec] = results
    return measured


if __name__ == '__main__':
    main()
