"""End-to-end training speed: real ADSH rounds on CUB-sized JPEGs.

Writes ``--num-images`` textured 500x375 JPEGs (~79 KB, like CUB's photos)
in CUB-200-2011's layout, then runs ``tools/train.py`` on the given config
pointed at them for ``--rounds`` rounds: loading (with the config's round
cache), training steps, the bitwise B update, logging and a checkpoint per
round are all included; evaluation is off (no test split). A hook records
each round's wall time (start of the round to its checkpoint), from which
it reports img/s over the rounds after the first (which also compiles,
starts workers and fills the cache) and the projected time of the paper's
CUB schedule (40 rounds x 30 passes x 2,000 images; evaluations not
included).

Examples::

    python benchmarks/bench_e2e.py configs/queryopt/queryopt_cub_12bit_fast.py
    python benchmarks/bench_e2e.py \
        configs/queryopt/queryopt_cub_12bit_throughput.py
    python benchmarks/bench_e2e.py configs/queryopt_cub_12bit.py --small
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

from mmengine.config import Config
from mmengine.hooks import Hook

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

from bench_data import write_cub_tree  # noqa: E402
from mmqueryopt.registry import HOOKS  # noqa: E402

PAPER_CUB_IMAGES = 40 * 30 * 2000  # rounds x passes x sampled images


@HOOKS.register_module(force=True)
class RoundTimerHook(Hook):
    """Append ``{round, seconds, images}`` of every training round to a
    JSON-lines file; a round ends after its B update and checkpoint.

    Args:
        out_file (str): Where the lines go.
    """

    priority = 'LOWEST'  # after the round hook and the checkpoint hook

    def __init__(self, out_file: str):
        self.out_file = out_file
        self._start = None
        self._images = 0

    def before_train_epoch(self, runner) -> None:
        self._start, self._images = time.perf_counter(), 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._images += len(data_batch['inputs'])

    def after_train_epoch(self, runner) -> None:
        with open(self.out_file, 'a') as f:
            f.write(json.dumps(dict(
                round=runner.epoch, images=self._images,
                seconds=time.perf_counter() - self._start)) + '\n')


def bench_config(config: str, data_root: str, work_dir: str, rounds: int,
                 num_samples: int, passes: int, small: bool) -> Config:
    """The config trained on ``data_root`` for ``rounds`` rounds, no
    evaluation, a checkpoint each round, timed by :class:`RoundTimerHook`.
    ``small``: CPU smoke size (32x32 crops, pretrained weights off, no
    compile)."""
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.update(data_root=data_root, warn_size=False)
    cfg.train_dataloader.sampler.update(num_samples=num_samples,
                                        epochs_per_round=passes)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=rounds, val_interval=1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint.update(interval=1, save_best=None)
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'RoundVisualizerHook'
    ] + [dict(type='RoundTimerHook',
              out_file=osp.join(work_dir, 'rounds.jsonl'))]
    cfg.custom_imports = dict(imports=['mmqueryopt', 'bench_e2e'],
                              allow_failed_imports=False)
    # Random weights: the speed is the same and nothing is downloaded.
    cfg.model.backbone.init_cfg = None
    if small:
        cfg.compile = None
        cfg.train_dataloader.update(batch_size=4, num_workers=2)
        for step in cfg.train_dataloader.dataset.pipeline:
            if step['type'] == 'RandomResizedCrop':
                step['scale'] = 32
        cfg.default_hooks.logger.interval = 1
    return cfg


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=osp.join(
        REPO, 'configs/queryopt/queryopt_cub_12bit_fast.py'))
    parser.add_argument('--num-images', type=int, default=5994,
                        help="JPEGs in the training set (CUB's 5,994)")
    parser.add_argument('--num-samples', type=int, default=2000)
    parser.add_argument('--passes', type=int, default=30)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--work-dir', default=None,
                        help='keep the tree and logs here (default: temp)')
    parser.add_argument('--small', action='store_true',
                        help='CPU smoke mode: 24 images, 2 rounds of 2 '
                        'passes over 8, 32x32 crops, no compile')
    parser.add_argument('--timeout', type=float, default=None)
    args = parser.parse_args(argv)
    if args.small:
        args.num_images, args.num_samples = 24, 8
        args.passes, args.rounds = 2, 2

    with tempfile.TemporaryDirectory() as tmp:
        base = args.work_dir or tmp
        data_root = osp.join(base, 'CUB_200_2011')
        start = time.perf_counter()
        if not osp.exists(osp.join(data_root, 'images.txt')):
            write_cub_tree(data_root, args.num_images, (500, 375),
                           processes=os.cpu_count())
        written = time.perf_counter() - start
        work_dir = osp.join(base, 'work')
        os.makedirs(work_dir, exist_ok=True)
        timing_file = osp.join(work_dir, 'rounds.jsonl')
        if osp.exists(timing_file):
            os.remove(timing_file)
        cfg = bench_config(args.config, data_root, work_dir, args.rounds,
                           args.num_samples, args.passes, args.small)
        config_file = osp.join(work_dir, 'bench_e2e_config.py')
        cfg.dump(config_file)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [HERE, REPO, os.environ.get('PYTHONPATH', '')]))
        proc = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools/train.py'), config_file],
            cwd=REPO, env=env, capture_output=True, text=True,
            timeout=args.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f'tools/train.py failed ({proc.returncode}):'
                               f'\n{(proc.stdout + proc.stderr)[-4000:]}')
        with open(timing_file) as f:
            rounds = [json.loads(line) for line in f]
    report = summarise(rounds)
    report.update(config=osp.relpath(args.config, REPO),
                  images_written_s=written)
    print_report(report, args)
    return report


def summarise(rounds: List[dict]) -> dict:
    """img/s of all rounds and of the rounds after the first; the paper's
    CUB schedule at the latter rate."""
    def rate(rows):
        return (sum(r['images'] for r in rows) /
                sum(r['seconds'] for r in rows)) if rows else float('nan')

    steady = rate(rounds[1:])
    return dict(rounds=rounds, all_rounds_img_s=rate(rounds),
                steady_img_s=steady,
                paper_cub_minutes=PAPER_CUB_IMAGES / steady / 60)


def print_report(report: dict, args) -> None:
    import torch
    where = (torch.cuda.get_device_name() if torch.cuda.is_available() else
             'CPU only')
    print(f'{report["config"]}: {args.num_images} JPEGs 500x375 (written in '
          f'{report["images_written_s"]:.0f} s), {args.rounds} rounds of '
          f'{args.passes} passes over {args.num_samples}; torch '
          f'{torch.__version__}, {where}, {os.cpu_count()} CPU cores\n')
    print('| round | images | seconds | img/s |')
    print('| --- | --- | --- | --- |')
    for r in report['rounds']:
        print(f'| {r["round"]} | {r["images"]:,} | {r["seconds"]:.1f} | '
              f'{r["images"] / r["seconds"]:,.0f} |')
    print(f'\nEnd to end after the first round: '
          f'{report["steady_img_s"]:,.0f} img/s; the paper\'s CUB schedule '
          f'({PAPER_CUB_IMAGES:,} images) would take '
          f'{report["paper_cub_minutes"]:,.1f} min of training (evaluations '
          f'not included).')


if __name__ == '__main__':
    main()
