"""Model-only speed of every method: train-step and inference img/s, memory.

Each method of the toolbox is found by its CUB config,
``configs/<method>/<method>_cub_12bit.py``. Its model is built with random
weights (no download), ADSH's database sized like CUB's (5,994 images, 200
classes) and fed random normalised images; the loader is left out (see
``bench_data.py`` and ``bench_e2e.py``). A train step is forward, the
method's loss, backward and an SGD step; inference is the relaxed codes
under ``no_grad``.

Settings (``--settings``):

- ``fp32-eager``: fp32, batch 16, eager: the paper's setting.
- ``fp32-graphs``: the same under ``torch.compile(mode='reduce-overhead')``
  (CUDA graphs; GPU only).
- ``bf16-cl-eager`` / ``bf16-cl-compiled``: bf16 autocast, channels-last,
  batch 128; ``bf16-cl-compiled-b256``: batch 256.

A setting the machine cannot run (no GPU for CUDA graphs, no native bf16,
no working compiler) is printed as a row that says why.

Examples::

    python benchmarks/bench_train.py                      # GPU, all
    python benchmarks/bench_train.py --small              # CPU, seconds
    python benchmarks/bench_train.py --small --settings fp32-eager \\
        bf16-cl-eager --methods queryopt
"""
import argparse
import glob
import os
import os.path as osp
import re
import resource
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmqueryopt.engine.speed_switch_hook import (  # noqa: E402
    bf16_cpu_supported, compile_problem)
from mmqueryopt.registry import MODELS  # noqa: E402

NUM_DATABASE, NUM_CLASSES, NUM_SAMPLED = 5994, 200, 2000


@dataclass
class Setting:
    """One way to run the model."""
    name: str
    batch_size: int
    bf16: bool = False
    channels_last: bool = False
    compile_mode: Optional[str] = None  # None: eager; 'default', ...


SETTINGS = {
    s.name: s
    for s in (
        Setting('fp32-eager', 16),
        Setting('fp32-graphs', 16, compile_mode='reduce-overhead'),
        Setting('bf16-cl-eager', 128, bf16=True, channels_last=True),
        Setting('bf16-cl-compiled', 128, bf16=True, channels_last=True,
                compile_mode='default'),
        Setting('bf16-cl-compiled-b256', 256, bf16=True, channels_last=True,
                compile_mode='default'),
    )
}


def method_configs(config_dir: str = osp.join(REPO, 'configs')
                   ) -> Dict[str, str]:
    """``{method: path}`` of every ``<method>/<method>_cub_12bit.py``."""
    found = {}
    for path in sorted(
            glob.glob(osp.join(config_dir, '*', '*_cub_12bit.py'))):
        match = re.fullmatch(r'([a-z0-9-]+)_cub_12bit\.py',
                             osp.basename(path))
        if match:
            found[match.group(1)] = path
    return found


def build_model(config: str, device: torch.device):
    """The config's model with random weights and CUB's database size."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None  # random weights: no download
    model = MODELS.build(model_cfg).to(device)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(NUM_CLASSES, (NUM_DATABASE, ), generator=generator)
    model.database.prepare(labels, generator=generator)
    model.database.start_round(
        0, 1, torch.randperm(NUM_DATABASE, generator=generator)[:NUM_SAMPLED])
    lr = cfg.optim_wrapper.optimizer.get('lr', 1e-4)
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=lr,
        momentum=0.9)
    return model, optimizer, labels


def unavailable(setting: Setting, device: torch.device) -> Optional[str]:
    """Why ``setting`` cannot run on ``device``, or None."""
    if setting.compile_mode == 'reduce-overhead' and device.type != 'cuda':
        return 'CUDA graphs need a GPU'
    if setting.bf16:
        native = (torch.cuda.is_bf16_supported(including_emulation=False)
                  if device.type == 'cuda' else bf16_cpu_supported())
        if not native:
            return 'no native bf16 here (emulated it would only be slower)'
    if setting.compile_mode:
        problem = compile_problem(True, device)
        if problem:
            return f'torch.compile does not work here: {problem}'
    return None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: "5" resets the process's peak resident set (VmHWM)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident
    set on CPU, since :func:`reset_peak_memory`."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def images_per_second(step: Callable[[], None], batch_size: int,
                      warmup: int, iters: int,
                      device: torch.device) -> float:
    """Run ``warmup`` untimed steps (compilation, CUDA graph capture), then
    time ``iters`` steps, waiting for the device at both ends only."""
    for _ in range(warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return batch_size * iters / (time.perf_counter() - start)


def measure(config: str, setting: Setting, device: torch.device,
            image_size: int, warmup: int, iters: int,
            batch_size: Optional[int] = None) -> dict:
    """Train and inference img/s and peak memory of one method, one
    setting."""
    batch_size = batch_size or setting.batch_size
    torch._dynamo.reset()
    model, optimizer, labels = build_model(config, device)
    memory_format = (torch.channels_last if setting.channels_last else
                     torch.contiguous_format)
    model.to(memory_format=memory_format)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(batch_size, 3, image_size, image_size,
                         generator=generator).to(
                             device, memory_format=memory_format)
    rows = torch.randperm(NUM_DATABASE, generator=generator)[:batch_size]
    # Labels on the device, as the data preprocessor leaves them: a CPU
    # tensor inside the compiled graph would keep CUDA graphs off.
    samples = [
        DataSample(metainfo=dict(sample_idx=int(r))).set_gt_label(
            labels[r:r + 1].to(device)) for r in rows
    ]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=setting.bf16)

    def loss_of(x):
        return sum(model.loss(x, samples).values())

    def codes_of(x):
        return model.extract_feat(x)

    if setting.compile_mode:
        loss_of = torch.compile(loss_of, mode=setting.compile_mode)
        codes_of = torch.compile(codes_of, mode=setting.compile_mode)

    def train_step():
        with autocast:
            loss = loss_of(inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer_step():
        with torch.no_grad(), autocast:
            codes_of(inputs)

    counters = torch._dynamo.utils.counters
    counters.clear()
    model.train()
    reset_peak_memory(device)
    train = images_per_second(train_step, batch_size, warmup, iters, device)
    train_mem = peak_memory_mib(device)
    model.eval()
    reset_peak_memory(device)
    infer = images_per_second(infer_step, batch_size, warmup, iters, device)
    infer_mem = peak_memory_mib(device)
    # Graphs that CUDA graphs had to leave out (e.g. a CPU op inside), and
    # how many graphs dynamo made of the two functions (more than 2: graph
    # breaks or recompilations), so a compiled figure says what it was.
    notes = []
    if setting.compile_mode:
        notes.append(f"{counters['stats']['unique_graphs']} graphs")
        if setting.compile_mode == 'reduce-overhead':
            notes.append(f"{counters['inductor']['cudagraph_skips']} "
                         f'CUDA graph skips')
    return dict(batch=batch_size, train=train, infer=infer,
                train_mem=train_mem, infer_mem=infer_mem,
                notes='; '.join(notes))


def machine_line(device: torch.device) -> str:
    if device.type == 'cuda':
        where = torch.cuda.get_device_name(device)
    else:
        where = 'CPU'
        try:
            with open('/proc/cpuinfo') as f:
                where = next(line.split(':', 1)[1].strip() for line in f
                             if line.startswith('model name'))
        except (OSError, StopIteration):
            pass
        where += f', {torch.get_num_threads()} threads'
    return f'torch {torch.__version__}, {where}'


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None,
                        help='default: cuda if available, else cpu')
    parser.add_argument('--methods', nargs='+', default=None,
                        help='default: every '
                        'configs/<method>/<method>_cub_12bit.py')
    parser.add_argument('--settings', nargs='+', default=list(SETTINGS),
                        choices=list(SETTINGS))
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed steps (compiling, capturing)')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--batch-size', type=int, default=None,
                        help="override every setting's batch size")
    parser.add_argument('--small', action='store_true',
                        help='CPU smoke mode: batch 2, 1 warm-up, 1 step')
    args = parser.parse_args(argv)
    if args.small:
        args.batch_size = args.batch_size or 2
        args.warmup, args.iters = 1, 1
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    configs = method_configs()
    methods = args.methods or list(configs)
    missing = [m for m in methods if m not in configs]
    if missing:
        parser.error(f'no configs/<method>/<method>_cub_12bit.py for '
                     f'{missing}; '
                     f'found {sorted(configs)}')

    print(f'{machine_line(device)}; {args.image_size}x{args.image_size} '
          f'random input, {args.warmup} warm-up + {args.iters} timed steps'
          f'\n')
    print('| method | setting | batch | train img/s | inference img/s | '
          'peak memory train / inference | notes |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    results = []
    for setting_name in args.settings:
        setting = SETTINGS[setting_name]
        reason = unavailable(setting, device)
        for method in methods:
            batch = args.batch_size or setting.batch_size
            if reason:
                print(f'| {method} | {setting.name} | {batch} | not run: '
                      f'{reason} | | | |', flush=True)
                results.append(dict(method=method, setting=setting.name,
                                    skipped=reason))
                continue
            row = measure(configs[method], setting, device, args.image_size,
                          args.warmup, args.iters, args.batch_size)
            row.update(method=method, setting=setting.name)
            results.append(row)
            print(f'| {method} | {setting.name} | {row["batch"]} | '
                  f'{row["train"]:,.1f} | {row["infer"]:,.1f} | '
                  f'{row["train_mem"]:,.0f} / {row["infer_mem"]:,.0f} MiB | '
                  f'{row["notes"]} |', flush=True)
    memory = ('torch.cuda.max_memory_allocated' if device.type == 'cuda'
              else "the process's peak resident set (VmHWM)")
    print(f'\nPeak memory: {memory}. Host pid {os.getpid()}.')
    return results


if __name__ == '__main__':
    main()
