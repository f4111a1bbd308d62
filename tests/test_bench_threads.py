"""OpenMP defaults of the tools and the thread benchmark's smoke mode.

No timing is asserted: the benchmark's table shape and the settings its
child processes ran with."""
import ast
import os.path as osp
import re
import sys

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'benchmarks'))
sys.path.insert(0, osp.join(REPO, 'tools'))
import bench_threads  # noqa: E402
import openmp_env  # noqa: E402

# Every tool that runs a model (trains, evaluates or encodes).
MODEL_TOOLS = ('train', 'test', 'encode', 'search', 'visualize_attention',
               'visualize_bits')


def test_defaults_set_passive_waiting():
    environ = {'PATH': '/bin'}
    assert openmp_env.set_openmp_defaults(environ) == {
        'OMP_WAIT_POLICY': 'PASSIVE'}
    assert environ == {'PATH': '/bin', 'OMP_WAIT_POLICY': 'PASSIVE'}


@pytest.mark.parametrize('user', [
    {'OMP_WAIT_POLICY': 'ACTIVE'},
    {'GOMP_SPINCOUNT': '10000'},
    {'KMP_BLOCKTIME': '0'},
])
def test_user_wait_setting_wins(user):
    environ = dict(user, OMP_NUM_THREADS='3')
    assert openmp_env.set_openmp_defaults(environ) == {}
    assert environ == dict(user, OMP_NUM_THREADS='3')


def test_thread_count_is_left_to_the_user():
    environ = {'OMP_NUM_THREADS': '1'}
    openmp_env.set_openmp_defaults(environ)
    assert environ == {'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'PASSIVE'}


@pytest.mark.parametrize('tool', MODEL_TOOLS)
def test_tools_set_openmp_env_before_anything_else(tool):
    """OpenMP reads its variables when torch loads it: the tool's first
    statement after the docstring must be the import that sets them."""
    path = osp.join(REPO, 'tools', f'{tool}.py')
    with open(path) as f:
        body = ast.parse(f.read()).body
    first = body[1] if isinstance(body[0], ast.Expr) else body[0]
    assert isinstance(first, ast.Import), path
    assert [alias.name for alias in first.names] == ['openmp_env'], path


def test_small_mode_table_and_child_settings(digits_root, capsys):
    results = bench_threads.main([
        '--small', '--settings', 'chosen', '1-thread', '--data-root',
        str(digits_root), '--timeout', '300'])
    assert list(results) == ['chosen', '1-thread']
    for condition in bench_threads.CONDITIONS:
        chosen = results['chosen'][condition]
        single = results['1-thread'][condition]
        assert 'error' not in chosen and 'error' not in single
        # The child saw the tools' default and no user variable; the
        # 1-thread child saw only its thread count.
        assert chosen['env'] == dict(
            OMP_NUM_THREADS=None, OMP_WAIT_POLICY='PASSIVE',
            GOMP_SPINCOUNT=None, KMP_BLOCKTIME=None, MKL_NUM_THREADS=None)
        assert chosen['threads'] >= 1
        assert single['env']['OMP_NUM_THREADS'] == '1'
        assert single['env']['OMP_WAIT_POLICY'] is None
        assert single['threads'] == 1
        for run in (chosen, single):
            assert run['batch'] == 16 and run['iters'] == 2
            assert run['s_per_iter'] > 0 and run['cpu_per_iter'] > 0
    table = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('|')]
    assert table[0] == (
        '| setting | OpenMP environment | threads | idle s/iter | '
        'idle img/s | loaded s/iter | loaded img/s | loaded / idle | '
        'CPU s/iter idle / loaded |')
    assert len(table) == 4
    number = r'[\d,]+(\.\d+)?'
    row = (r'\| {name} \| {env} \| {threads} \| {n} \| {n} \| {n} \| {n} '
           r'\| \d+\.\dx \| \d+\.\d{{3}} / \d+\.\d{{3}} \|')
    assert re.fullmatch(row.format(
        name='chosen', env='OMP_WAIT_POLICY=PASSIVE', threads=r'\d+',
        n=number), table[2]), table[2]
    assert re.fullmatch(row.format(
        name='1-thread', env='OMP_NUM_THREADS=1', threads='1', n=number),
        table[3]), table[3]


def test_competing_load_is_stopped():
    procs = bench_threads.start_load(2, seconds=60)
    bench_threads.stop_load(procs)
    assert [proc.poll() is not None for proc in procs] == [True, True]
