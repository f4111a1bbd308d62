"""Kill training with SIGKILL at random moments, resume each time, and check
that the end result is the uninterrupted run's, bit for bit.

    python benchmarks/fault_injection.py [--kills 10] [--seed 0]
        [--work-dir work_dirs/fault_injection] [--rounds R]

Trains the digits main job (``configs/queryopt/queryopt_digits_12bit.py``,
on the CPU, deterministic settings) once without faults: the reference,
which also times every occurrence of four phases (a training batch, a B
update, a checkpoint write, an evaluation). Then trains it again and kills it ``--kills`` times:
each kill is planned at a random occurrence of a phase (phases in turn,
occurrences in run order) and fires after a random delay within that
occurrence's measured duration. After every kill ``tools/train.py --resume``
continues from what is on disk. The final checkpoint's B, weights and every
other tensor, and the final mAP, are compared with the reference.

Prints one row per kill: where it landed, which round the resume started
from, rounds redone beyond the interrupted one (0 is the goal), and what the
resume reported (a damaged checkpoint skipped, a partial file removed).
Exits 1 when the final state differs or a kill missed. Takes several minutes.
"""
import argparse
import json
import os
import os.path as osp
import random
import re
import shutil
import subprocess
import sys
import time

import torch
from mmengine.config import Config

import mmqueryopt  # noqa: F401  (checkpoints load under weights_only)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))
from fault_hook import PHASES  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kills', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/fault_injection')
    parser.add_argument(
        '--config', default='configs/queryopt/queryopt_digits_12bit.py')
    parser.add_argument(
        '--rounds', type=int, help='train fewer rounds than the config')
    return parser.parse_args()


def write_config(args, work_dir: str) -> str:
    cfg = Config.fromfile(osp.join(REPO, args.config))
    cfg.randomness = dict(seed=42, deterministic=True)
    cfg.custom_imports = dict(
        imports=['mmqueryopt', 'fault_hook'], allow_failed_imports=False)
    cfg.custom_hooks.append(
        dict(type='FaultHook', record_file=osp.join(work_dir, 'phases.jsonl')))
    if args.rounds:
        cfg.train_cfg.max_epochs = args.rounds
    path = osp.join(work_dir, 'fault_config.py')
    cfg.dump(path)
    return path


def train(config: str, work_dir: str, resume: bool, fault=None):
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(
                   [REPO, osp.join(REPO, 'benchmarks')]))
    env.pop('MMQUERYOPT_FAULT', None)
    if fault is not None:
        env['MMQUERYOPT_FAULT'] = json.dumps(fault)
    command = [sys.executable, 'tools/train.py', config, '--work-dir',
               work_dir] + (['--resume'] if resume else [])
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                          text=True)
    return proc.returncode, proc.stdout + proc.stderr


def final_map(log: str) -> float:
    found = re.findall(r'Final evaluation: .*retrieval/mAP: ([0-9.]+)', log)
    if not found:
        raise RuntimeError('no "Final evaluation" line:\n' + log[-3000:])
    return float(found[-1])


def plan_kills(events: list, kills: int, rng: random.Random) -> list:
    """``kills`` occurrences, phases in turn, in the order the run meets
    them; each with a delay drawn within its measured duration."""
    order = {tuple(e[:3]): i for i, e in enumerate(events)}
    by_phase = {p: [e for e in events if e[0] == p] for p in PHASES}
    chosen = []
    for i in range(kills):
        phase = PHASES[i % len(PHASES)]
        pool = [e for e in by_phase[phase] if e not in chosen] or [
            e for e in events if e not in chosen]
        chosen.append(rng.choice(pool))
    chosen.sort(key=lambda e: order[tuple(e[:3])])
    # Within 90% of the measured duration, so the kill lands in the phase
    # even when the process would end right after it.
    return [dict(phase=p, epoch=epoch, index=index, what=what,
                 delay=rng.uniform(0, 0.9 * seconds))
            for p, epoch, index, seconds, what in chosen]


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    work_dir = osp.abspath(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    if not osp.isdir(osp.join(REPO, 'data/digits')):
        subprocess.run([sys.executable, 'tools/export_digits.py',
                        'data/digits'], cwd=REPO, check=True)
    config = write_config(args, work_dir)
    reference_dir = osp.join(work_dir, 'reference')
    series_dir = osp.join(work_dir, 'killed')

    start = time.perf_counter()
    code, log = train(config, reference_dir, resume=False)
    if code != 0:
        raise RuntimeError('the reference run failed:\n' + log[-3000:])
    reference_s = time.perf_counter() - start
    reference_map = final_map(log)
    with open(osp.join(work_dir, 'phases.jsonl')) as f:
        events = [json.loads(line) for line in f]
    plan = plan_kills(events, args.kills, rng)

    rows, missed = [], 0
    start = time.perf_counter()
    for number, fault in enumerate(plan, 1):
        code, log = train(config, series_dir, resume=number > 1, fault=fault)
        if code != -9:
            missed += 1
        rows.append(dict(fault=fault, killed=code == -9,
                         resume_log_of_run=log))
    code, log = train(config, series_dir, resume=True)
    if code != 0:
        raise RuntimeError('the last resume failed:\n' + log[-3000:])
    series_s = time.perf_counter() - start
    series_map = final_map(log)

    # Each run's log tells where the previous kill's resume started.
    resume_logs = [row['resume_log_of_run'] for row in rows[1:]] + [log]
    print(f'{"kill":>4}  {"phase":<10} {"round":>9} {"delay ms":>8}  '
          f'{"killed":<6} {"resumed from":>12} {"rounds redone":>13}  '
          'resume reported')
    worst = 0
    for number, (row, resume_log) in enumerate(zip(rows, resume_logs), 1):
        fault = row['fault']
        # Rounds completed when the phase began: runner.epoch.
        completed = fault['epoch']
        resumed = re.search(r'resumed epoch: (\d+)', resume_log)
        resumed = int(resumed.group(1)) if resumed else 0
        redone = max(0, completed - resumed)
        worst = max(worst, redone)
        notes = []
        if re.search(r'damaged|skipp', resume_log, re.IGNORECASE):
            notes.append('skipped a damaged checkpoint')
        if 'left by a run killed while saving' in resume_log:
            notes.append('removed a partial file')
        # Batches and B updates belong to round epoch + 1; evaluations and
        # best checkpoints follow round epoch; a round's checkpoint is
        # epoch_<round>.pth.
        if fault['phase'] in ('batch', 'b_update'):
            where = f'{completed + 1}'
        elif fault['what'].startswith('epoch_'):
            where = 'end of ' + fault['what'][len('epoch_'):-len('.pth')]
        else:
            where = f'after {completed}'
        print(f'{number:>4}  {fault["phase"]:<10} {where:>9} '
              f'{fault["delay"] * 1000:>8.1f}  '
              f'{"yes" if row["killed"] else "NO":<6} {resumed:>12} '
              f'{redone:>13}  {", ".join(notes) or "-"}')

    reference = torch.load(
        _last_checkpoint(reference_dir), map_location='cpu')['state_dict']
    series = torch.load(
        _last_checkpoint(series_dir), map_location='cpu')['state_dict']
    differing = sorted(k for k in reference
                       if not torch.equal(reference[k], series.get(k)))
    same_b = torch.equal(reference['database_codes'],
                         series['database_codes'])
    print()
    print(f'kills: {len(rows)} ({missed} missed), resumes: {len(rows)}, '
          f'most rounds redone beyond the interrupted one: {worst}')
    print(f'final mAP: uninterrupted {reference_map:.4f}, killed and resumed '
          f'{series_map:.4f}, difference '
          f'{abs(reference_map - series_map):.4f}')
    print(f'final B identical: {same_b}; tensors that differ: '
          f'{len(differing)} of {len(reference)}'
          + (f' ({", ".join(differing[:5])})' if differing else ''))
    print(f'time: uninterrupted {reference_s:.0f} s, killed series '
          f'{series_s:.0f} s')
    sys.exit(int(bool(differing) or missed > 0
                 or reference_map != series_map))


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


if __name__ == '__main__':
    main()
