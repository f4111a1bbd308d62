"""Check the config's speed switches on this machine; apply channels_last.

The switches are MMEngine's own config keys (``compile``, ``optim_wrapper``
of type ``AmpOptimWrapper``) plus this hook's ``channels_last``. A switch
the machine cannot honour must not turn into a silent slowdown or a crash
deep inside the first iteration: compile falls back to eager with a
warning, bf16 without hardware support stops with an explanation.
"""
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmqueryopt.compat import run_uncompiled
from mmqueryopt.registry import HOOKS
from .utils import unwrap_model


@HOOKS.register_module()
class SpeedSwitchHook(Hook):
    """Honour or refuse the speed switches before training starts.

    - ``compile`` (the runner compiles ``train_step``; compilation itself
      happens at the first iteration): a tiny function is compiled with
      the same options on the model's device first. If that fails (no C++
      compiler for inductor on CPU, no Triton on GPU), the run goes on
      eager and the log says why.
    - ``optim_wrapper.dtype='bfloat16'``: stops when the device has no
      native bf16 (e.g. a pre-Ampere GPU), where autocast would emulate it
      slowly or fail.
    - ``channels_last``: moves the model's 4-d weights to channels-last
      memory format, so convolutions run NHWC (tensor cores like it with
      bf16). Convert before DDP wraps the model when possible; after, DDP
      only warns about gradient strides.

    Args:
        channels_last (bool): Use channels-last memory format. Defaults to
            False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, channels_last: bool = False):
        self.channels_last = channels_last

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        device = next(model.parameters()).device
        check_bf16(runner.cfg.get('optim_wrapper', {}), device)
        error = compile_problem(runner.cfg.get('compile'), device)
        if error is not None and 'train_step' in vars(runner.model):
            run_uncompiled(runner.model, 'train_step')
            runner.logger.warning(
                f'compile={runner.cfg.compile!r} cannot work here, training '
                f'eager (slower) instead: {error}. Set compile=None to '
                f'silence this')
        self._to_channels_last(runner)

    def before_val(self, runner) -> None:
        self._to_channels_last(runner)

    def before_test(self, runner) -> None:
        self._to_channels_last(runner)

    def _to_channels_last(self, runner) -> None:
        if self.channels_last:
            runner.model.to(memory_format=torch.channels_last)


def check_bf16(optim_wrapper: dict, device: torch.device) -> None:
    """Refuse bf16 autocast where the device has no native bf16.

    Args:
        optim_wrapper (dict): The config's ``optim_wrapper``.
        device (torch.device): Where the model is.

    Raises:
        RuntimeError: Naming the switch and what to do instead.
    """
    if optim_wrapper.get('dtype') not in ('bfloat16', torch.bfloat16):
        return
    if device.type == 'cuda':
        supported = torch.cuda.is_bf16_supported(including_emulation=False)
        hardware = torch.cuda.get_device_name(device)
    else:
        supported = bf16_cpu_supported()
        hardware = 'this CPU (no AVX512-BF16 or AMX)'
    if not supported:
        raise RuntimeError(
            f"optim_wrapper.dtype='bfloat16' needs native bf16, which "
            f'{hardware} lacks: it would be emulated, slower than fp32. Use '
            'the fp32 config (e.g. '
            'configs/queryopt/queryopt_cub_12bit_fast.py) or '
            f"optim_wrapper.dtype='float16' on a GPU")


def bf16_cpu_supported() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    cpu = torch.cpu
    return bool(
        getattr(cpu, '_is_avx512_bf16_supported', lambda: False)()
        or getattr(cpu, '_is_amx_tile_supported', lambda: False)())


def compile_problem(compile_cfg, device: torch.device) -> Optional[str]:
    """Why ``torch.compile`` with these options fails here, or None.

    Compiles and runs a two-op function: it needs the same toolchain as
    the model (inductor: a C++ compiler on CPU, Triton on GPU).

    Args:
        compile_cfg (bool | dict | None): The config's ``compile``.
        device (torch.device): Where the model is.

    Returns:
        str | None: The failure, in one line; None when it works or
        compile is off.
    """
    if not compile_cfg:
        return None
    options = {} if compile_cfg is True else dict(compile_cfg)
    # CUDA graphs do not apply to the probe's single call; the backend and
    # its compiler are what is checked.
    options.pop('mode', None)
    options.pop('dynamic', None)

    def probe(x):
        return torch.relu(x) * 2 + 1

    try:
        torch._dynamo.reset()
        compiled = torch.compile(probe, **options)
        x = torch.randn(8, device=device)
        if not torch.equal(compiled(x), probe(x)):
            return 'the compiled probe gave other numbers than eager'
    except Exception as err:  # dynamo wraps toolchain errors many ways
        return f'{type(err).__name__}: {str(err).strip().splitlines()[0]}'
    finally:
        torch._dynamo.reset()
    return None
