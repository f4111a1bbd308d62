"""Random tensors with a reference model's exact keys, shapes and dtypes,
read from the key lists the facts files ship (tests/data/*_state_dict_12bit.txt:
``key<TAB>(shape)<TAB>dtype`` lines, ``#`` comments)."""
import math
import os.path as osp
from typing import Dict, List, Tuple

import torch

DATA = osp.join(osp.dirname(osp.abspath(__file__)), 'data')


def key_list(name: str) -> List[Tuple[str, Tuple[int, ...], str]]:
    """(key, shape, dtype) of ``tests/data/<name>_state_dict_12bit.txt``, in
    the file's order (a repeated key, e.g. DeepHash-pytorch's ResNet
    registering its layers twice, appears as often as it is listed)."""
    entries = []
    for line in open(osp.join(DATA, f'{name}_state_dict_12bit.txt')):
        if line.startswith('#') or not line.strip():
            continue
        key, shape, dtype = line.rstrip('\n').split('\t')
        size = tuple(int(s) for s in shape.strip('()').split(',') if s)
        entries.append((key, size, dtype))
    return entries


def reference_state_dict(name: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A random state dict of the reference model ``name`` (e.g. 'adsh').

    Weights are variance-preserving (N(0, 1/fan_in)), so that activations
    neither vanish nor saturate tanh through 50 layers; BatchNorm scales and
    running variances lie in [0.5, 1.5), so that the train- and eval-mode
    outputs differ; integer entries (num_batches_tracked) are 7.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, size, dtype in key_list(name):
        if dtype == 'torch.int64':
            state[key] = torch.tensor(7)
        elif key.endswith(('running_var', 'weight')) and len(size) == 1:
            state[key] = torch.rand(size, generator=generator) + 0.5
        elif len(size) > 1:
            fan_in = math.prod(size[1:])
            state[key] = torch.randn(size, generator=generator) / math.sqrt(
                fan_in)
        else:
            state[key] = 0.05 * torch.randn(size, generator=generator)
    return state
