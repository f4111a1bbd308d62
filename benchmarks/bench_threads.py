"""Training speed of the digits main job on idle and on busy cores, with
torch's default OpenMP settings and with the tools' (``tools/openmp_env.py``).

Each measurement is a fresh process (OpenMP reads its settings when torch
loads it) that trains ``configs/queryopt/queryopt_digits_12bit.py`` through
MMEngine's Runner, as ``tools/train.py --no-validate`` does, for
``--warmup`` untimed and ``--iters`` timed iterations (loader, forward,
loss, backward, AdamW step; batch 16, 32x32). "Loaded" runs the same
process beside one busy-looping process per usable CPU, which the benchmark
starts before and stops after each measurement (each also stops itself
after ``--timeout`` + 30 s).

Settings (``--settings``), each in an environment without the user's
OpenMP variables:

- ``default``: torch's defaults (libgomp spins up to 300,000 times
  before a waiting thread sleeps; one thread per CPU).
- ``chosen``: what the tools set, ``tools/openmp_env.py`` imported before
  torch (``OMP_WAIT_POLICY=PASSIVE``; one thread per CPU).
- ``1-thread``: ``OMP_NUM_THREADS=1`` (the old advice for busy machines).

Prints a Markdown table: s/iter and img/s idle and loaded, the slowdown,
and the process's CPU seconds per iteration (above the idle ``chosen``
figure: threads spinning instead of working).

Examples::

    python benchmarks/bench_threads.py                 # ~5 min on 2 cores
    python benchmarks/bench_threads.py --small         # smoke test
    python benchmarks/bench_threads.py --data-root data/digits --repeats 3
"""
import argparse
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'queryopt', 'queryopt_digits_12bit.py')
RESULT_TAG = 'bench_threads result: '

#: The user's thread and wait settings, removed from every child's
#: environment so that each setting is measured as it is defined.
OPENMP_VARIABLES = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT',
                    'KMP_BLOCKTIME', 'MKL_NUM_THREADS')
SETTINGS = {
    'default': {},
    'chosen': {},  # tools/openmp_env.py, imported by the child itself
    '1-thread': {'OMP_NUM_THREADS': '1'},
}
CONDITIONS = ('idle', 'loaded')


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return 'unknown CPU'


# ----------------------------------------------------------------- child

def child_main(setting: str, data_root: str, warmup: int,
               iters: int) -> dict:
    """Train ``warmup + iters`` iterations of the main job in this process
    and return its timings. Runs before anything here imports torch."""
    if setting == 'chosen':
        sys.path.insert(0, osp.join(REPO, 'tools'))
        import openmp_env  # noqa: F401  (as the tools: before torch)
    env = {name: os.environ.get(name) for name in OPENMP_VARIABLES}

    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import mmqueryopt  # noqa: F401  (registers every module)

    class IterClock(Hook):
        """Wall and process CPU time at the end of every train iteration."""

        def __init__(self):
            self.marks = []

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            self.marks.append((time.perf_counter(), time.process_time()))

    cfg = Config.fromfile(CONFIG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    # tools/train.py --no-validate; one round of exactly the iterations
    # wanted; no checkpoint, no log lines in the timed span.
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    batch = cfg.train_dataloader.batch_size
    cfg.train_dataloader.sampler.update(
        num_samples=batch * (warmup + iters), epochs_per_round=1)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 10**6
    cfg.log_level = 'WARNING'
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        runner = Runner.from_cfg(cfg)
        clock = IterClock()
        runner.register_hook(clock, 'LOWEST')
        runner.train()
    (wall0, cpu0), (wall1, cpu1) = clock.marks[warmup - 1], clock.marks[-1]
    parallel = torch.__config__.parallel_info()
    return dict(
        setting=setting, env=env, threads=torch.get_num_threads(),
        backend=next((line.split(':', 1)[1].strip()
                      for line in parallel.splitlines()
                      if line.startswith('ATen parallel backend')), '?'),
        torch=torch.__version__, batch=batch, iters=len(clock.marks) - warmup,
        s_per_iter=(wall1 - wall0) / iters,
        cpu_per_iter=(cpu1 - cpu0) / iters)


# ---------------------------------------------------------------- parent

def start_load(count: int, seconds: float) -> List[subprocess.Popen]:
    """``count`` busy-looping processes, each ending itself after
    ``seconds`` whatever happens to this one."""
    loop = ('import time\nend = time.monotonic() + %r\n'
            'while time.monotonic() < end:\n    pass\n' % seconds)
    return [subprocess.Popen([sys.executable, '-c', loop])
            for _ in range(count)]


def stop_load(procs: List[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def child_env(setting: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_VARIABLES}
    env.update(SETTINGS[setting])
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
    return env


def measure(setting: str, condition: str, args) -> dict:
    """One child process, beside the competing load if ``condition`` is
    ``'loaded'``. A child that fails or runs past ``--timeout`` gives a
    row that says so."""
    cmd = [sys.executable, osp.abspath(__file__), '--child', setting,
           '--data-root', args.data_root, '--warmup', str(args.warmup),
           '--iters', str(args.iters)]
    load = (start_load(args.load, args.timeout + 30)
            if condition == 'loaded' else [])
    try:
        if load:
            time.sleep(0.5)  # the competitors are up and spinning
        proc = subprocess.run(cmd, env=child_env(setting), text=True,
                              capture_output=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f'over {args.timeout} s')
    finally:
        stop_load(load)
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        return dict(error=f'exit {proc.returncode}: {last}')
    return json.loads(lines[-1][len(RESULT_TAG):])


def median_of(runs: List[dict]) -> dict:
    """The run with the median s/iter (errors when any run failed)."""
    failed = [run for run in runs if 'error' in run]
    if failed:
        return failed[0]
    runs = sorted(runs, key=lambda run: run['s_per_iter'])
    return runs[(len(runs) - 1) // 2]


def environment_of(result: dict) -> str:
    set_vars = [f'{k}={v}' for k, v in result['env'].items() if v]
    return ' '.join(set_vars) or 'none set'


def print_table(results: Dict[str, Dict[str, dict]], args) -> None:
    print('| setting | OpenMP environment | threads | idle s/iter | '
          'idle img/s | loaded s/iter | loaded img/s | loaded / idle | '
          'CPU s/iter idle / loaded |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for setting, by_condition in results.items():
        ok = [r for r in by_condition.values() if 'error' not in r]
        first = ok[0] if ok else None
        cells = [setting, environment_of(first) if first else '?',
                 str(first['threads']) if first else '?']
        for condition in CONDITIONS:
            r = by_condition[condition]
            if 'error' in r:
                cells += [f'failed: {r["error"]}', '']
            else:
                cells += [f'{r["s_per_iter"]:.3f}',
                          f'{r["batch"] / r["s_per_iter"]:,.0f}']
        idle, loaded = by_condition['idle'], by_condition['loaded']
        both = 'error' not in idle and 'error' not in loaded
        cells.append(f'{loaded["s_per_iter"] / idle["s_per_iter"]:.1f}x'
                     if both else '')
        cells.append(' / '.join(
            f'{r["cpu_per_iter"]:.3f}' if 'error' not in r else '?'
            for r in (idle, loaded)))
        print('| ' + ' | '.join(cells) + ' |', flush=True)


def export_digits(out_dir: str) -> None:
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'export_digits.py'),
         out_dir], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        raise SystemExit(f'error: tools/export_digits.py failed: {last}')


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, dict]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--settings', nargs='+', default=list(SETTINGS),
                        choices=list(SETTINGS))
    parser.add_argument('--data-root',
                        help='the digits in CUB layout (default: exported '
                        'to a temporary folder by tools/export_digits.py)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed iterations first (at least 1)')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=1,
                        help='runs per cell; the median is shown')
    parser.add_argument('--load', type=int, default=usable_cpus(),
                        help='busy-looping processes when loaded '
                        '(default: one per usable CPU)')
    parser.add_argument('--timeout', type=int, default=600,
                        help='seconds one measurement may take')
    parser.add_argument('--small', action='store_true',
                        help='smoke mode: 1 warm-up + 2 timed iterations')
    parser.add_argument('--child', choices=list(SETTINGS),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small:
        args.warmup, args.iters = 1, 2
    for name in ('warmup', 'iters', 'repeats', 'load', 'timeout'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be at least 1')
    if args.child:
        result = child_main(args.child, args.data_root, args.warmup,
                            args.iters)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return {}

    scratch = None
    if args.data_root is None:
        scratch = tempfile.mkdtemp(prefix='bench_threads_')
        args.data_root = osp.join(scratch, 'digits')
        export_digits(args.data_root)
    try:
        load1, load5, _ = os.getloadavg()
        print(f'{cpu_model()}, {usable_cpus()} usable CPUs; load average '
              f'{load1:.1f} (1 min) / {load5:.1f} (5 min) at the start. '
              f'Loaded: {args.load} busy-looping processes beside the job. '
              f'configs/queryopt/queryopt_digits_12bit.py training '
              f'(batch 16, 32x32): '
              f'{args.warmup} warm-up + {args.iters} timed iterations, '
              f'median of {args.repeats}.\n', flush=True)
        runs = {s: {c: [] for c in CONDITIONS} for s in args.settings}
        # Settings and conditions take turns, so that a change in the
        # machine's other load spreads over every cell.
        for _ in range(args.repeats):
            for setting in args.settings:
                for condition in CONDITIONS:
                    runs[setting][condition].append(
                        measure(setting, condition, args))
        results = {s: {c: median_of(runs[s][c]) for c in CONDITIONS}
                   for s in args.settings}
        first = next((r for by in results.values() for r in by.values()
                      if 'error' not in r), None)
        if first:
            print(f'torch {first["torch"]}, ATen parallel backend: '
                  f'{first["backend"]}\n')
        print_table(results, args)
        print(f'\nIdle: nothing started by the benchmark (other programs '
              f'as the load average says). CPU s/iter: the process\'s CPU '
              f'time, all its threads, per iteration. Beside {args.load} '
              f'busy loops on {usable_cpus()} CPUs a job using every CPU '
              f'gets about {usable_cpus() / (usable_cpus() + args.load):.0%}'
              f' of the machine: a slowdown near '
              f'{(usable_cpus() + args.load) / usable_cpus():.1f}x is in '
              f'proportion to the load.')
        return results
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
    main()
