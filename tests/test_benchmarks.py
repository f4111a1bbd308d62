"""Speed tooling: the benchmarks' small CPU modes, the speed switches, the
compiled model against eager. No timing is asserted here."""
import logging
import os
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.structures import DataSample

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.engine.speed_switch_hook import (bf16_cpu_supported,
                                                 check_bf16, compile_problem)
from mmqueryopt.models.hash_retriever import _sample_indices
from mmqueryopt.registry import MODELS

sys.path.insert(0, osp.join(REPO, 'benchmarks'))
import bench_data  # noqa: E402
import bench_e2e  # noqa: E402
import bench_train  # noqa: E402

CPU = torch.device('cpu')


class _ListHandler(logging.Handler):
    """Collects the messages of a logger."""

    def __init__(self, messages):
        super().__init__()
        self.messages = messages

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_bench_data_small(capsys):
    threads = torch.get_num_threads()
    measured = bench_data.main([
        '--sizes', '80x60', '--workers', '0', '--num-images', '16',
        '--repeats', '1', '--min-seconds', '0.01'])
    # It times with one thread but gives the test process its own back:
    # later in-process training must sum as a subprocess does.
    assert torch.get_num_threads() == threads
    assert set(measured) == {('80x60', 0)}
    assert all(rate > 0 for rate in measured[('80x60', 0)].values())
    table = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('|')]
    assert table[0] == ('| image size | workers | uncached | cached | '
                        'cached / uncached |')
    assert re.fullmatch(r'\| 80x60 \| 0 \| [\d,]+ img/s \| [\d,]+ img/s \| '
                        r'\d+\.\d\d \|', table[2])


def test_bench_train_finds_every_method():
    # Each method folder (configs/<method>/) holds <method>_cub_12bit.py.
    expected = {
        n for n in os.listdir(osp.join(REPO, 'configs'))
        if osp.isfile(osp.join(REPO, 'configs', n, f'{n}_cub_12bit.py'))
    }
    found = bench_train.method_configs()
    assert 'queryopt' in found and set(found) == expected
    assert all(osp.basename(p) == f'{m}_cub_12bit.py'
               for m, p in found.items())


def test_bench_train_small(capsys):
    results = bench_train.main([
        '--small', '--image-size', '64', '--methods', 'queryopt',
        '--settings', 'fp32-eager', 'fp32-graphs', 'bf16-cl-eager'])
    rows = {r['setting']: r for r in results}
    eager = rows['fp32-eager']
    assert eager['batch'] == 2
    assert eager['train'] > 0 and eager['infer'] > 0
    assert eager['train_mem'] > 0
    assert rows['fp32-graphs']['skipped'] == 'CUDA graphs need a GPU'
    if bf16_cpu_supported():
        assert rows['bf16-cl-eager']['train'] > 0
    else:
        assert 'no native bf16' in rows['bf16-cl-eager']['skipped']
    out = capsys.readouterr().out
    assert '| queryopt | fp32-graphs | 2 | not run: CUDA graphs need a GPU' \
        in out


def test_bench_e2e_small(tmp_path):
    report = bench_e2e.main([
        osp.join(REPO, 'configs/queryopt_cub_12bit.py'), '--small',
        '--work-dir', str(tmp_path), '--timeout', '600'])
    # 2 rounds of 2 passes over 8 images, every round checkpointed.
    assert [r['round'] for r in report['rounds']] == [0, 1]
    assert [r['images'] for r in report['rounds']] == [16, 16]
    assert report['steady_img_s'] > 0
    assert report['paper_cub_minutes'] == pytest.approx(
        2_400_000 / report['steady_img_s'] / 60)
    work = tmp_path / 'work'
    assert (work / 'epoch_2.pth').exists()
    log = next(work.glob('*/*.log')).read_text()
    assert re.search(r'Round cache: 8 images decoded once', log)


def tiny_model():
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg('unused', 'unused')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_compiled_model_matches_eager():
    problem = compile_problem(True, CPU)
    if problem:
        pytest.skip(f'inductor cannot compile on this CPU: {problem}')
    torch.manual_seed(0)
    model = tiny_model().train()
    inputs = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        eager = model.extract_feat(inputs)
        compiled = torch.compile(model.extract_feat)(inputs)
    assert eager.shape == compiled.shape == (4, 96)
    assert torch.allclose(compiled, eager, rtol=0, atol=1e-4)
    assert eager.abs().max() > 1e-2  # not vacuous


def test_compile_without_a_compiler_falls_back_to_eager(
        digits_root, tmp_path, monkeypatch):
    import torch._inductor.config as inductor_config
    monkeypatch.setattr(inductor_config.cpp, 'cxx', ('/nonexistent/g++', ))
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), rounds=1,
                          epochs_per_round=1, num_samples=16)
    cfg.compile = dict(backend='inductor')
    cfg.custom_hooks.append(dict(type='SpeedSwitchHook', channels_last=True))
    runner = Runner.from_cfg(cfg)
    messages = []
    handler = _ListHandler(messages)
    MMLogger.get_current_instance().addHandler(handler)
    try:
        runner.train()
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    text = '\n'.join(messages)
    assert "compile={'backend': 'inductor'} cannot work here, training " \
        'eager' in text
    assert 'InvalidCxxCompiler' in text
    # The runner's compiled train_step was replaced by the eager one.
    assert 'train_step' not in vars(runner.model)
    assert runner.iter == 1
    weight = runner.model.backbone.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()


def test_bf16_refused_without_native_support(monkeypatch):
    check_bf16(dict(type='OptimWrapper'), CPU)  # not asked: nothing
    monkeypatch.setattr(torch.cpu, '_is_avx512_bf16_supported',
                        lambda: False)
    monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: False)
    with pytest.raises(RuntimeError,
                       match="optim_wrapper.dtype='bfloat16' needs native "
                       'bf16, which this CPU'):
        check_bf16(dict(type='AmpOptimWrapper', dtype='bfloat16'), CPU)


def test_fast_config_keeps_the_papers_numerics():
    base = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    fast = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_cub_12bit_fast.py'))
    assert fast.compile == dict(mode='reduce-overhead')
    assert fast.train_dataloader.batch_size == 16
    assert fast.optim_wrapper == base.optim_wrapper  # fp32, same SGD
    assert fast.model == base.model
    assert fast.train_cfg == base.train_cfg
    assert fast.train_dataloader.sampler == base.train_dataloader.sampler
    assert fast.custom_hooks == base.custom_hooks + [
        dict(type='SpeedSwitchHook')]
    assert fast.train_dataloader.dataset.pipeline[0].cache_bytes > 0


def test_throughput_config_scales_lr_with_batch():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_cub_12bit_throughput.py'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(3e-4 * 8)
    assert cfg.custom_hooks[-1] == dict(type='SpeedSwitchHook',
                                        channels_last=True)
    assert [h['type'] for h in cfg.custom_hooks].count('SpeedSwitchHook') == 1


def test_sample_indices_checked_on_the_host():
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in (3, 0, 9)]
    indices = _sample_indices(samples, CPU, 10)
    assert indices.tolist() == [3, 0, 9] and indices.dtype == torch.long
    with pytest.raises(IndexError, match='sample_idx 9 is outside the '
                       'database of 9 images'):
        _sample_indices(samples, CPU, 9)
