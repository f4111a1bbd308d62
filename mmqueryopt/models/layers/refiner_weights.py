"""Initial weights of the necks that copy a ResNet stage (A2-Net, ExchNet,
SEMICON): the reference code's init, and the checkpoint's stage weights."""
from typing import Dict, Optional

from torch import Tensor, nn


def reference_init(module: nn.Module) -> None:
    """The authors' init for every submodule: Kaiming normal (fan_out,
    ReLU) conv weights, BatchNorm weight 1 and bias 0; conv biases keep
    PyTorch's init."""
    for child in module.modules():
        if isinstance(child, nn.Conv2d):
            nn.init.kaiming_normal_(
                child.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(child, nn.BatchNorm2d):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)


def stage_weights(init_cfg: Optional[dict],
                  key: str = 'model.neck.init_cfg'
                  ) -> Optional[Dict[str, Tensor]]:
    """The checkpoint tensors a ``Pretrained`` init_cfg names, under its
    ``prefix`` (default ``'layer4.'``), with the prefix removed.

    Args:
        init_cfg (dict, optional): None, or ``dict(type='Pretrained',
            checkpoint=..., prefix='layer4.')``.
        key (str): The config key, for the error messages.

    Returns:
        dict[str, Tensor] | None: None when ``init_cfg`` is None.

    Raises:
        ValueError: Another init_cfg, or no key under the prefix.
        OSError: An unreadable checkpoint (the retriever adds advice).
    """
    if init_cfg is None:
        return None
    if not (isinstance(init_cfg, dict)
            and init_cfg.get('type') == 'Pretrained'):
        raise ValueError(
            f"{key} must be None or dict(type='Pretrained', checkpoint=..., "
            f"prefix='layer4.'), got {init_cfg}")
    from mmengine.runner.checkpoint import _load_checkpoint
    checkpoint = init_cfg['checkpoint']
    prefix = init_cfg.get('prefix', 'layer4.')
    loaded = _load_checkpoint(checkpoint, map_location='cpu')
    loaded = loaded.get('state_dict', loaded)
    weights = {
        name[len(prefix):]: value
        for name, value in loaded.items() if name.startswith(prefix)
    }
    if not weights:
        raise ValueError(
            f'{key}: {checkpoint} has no keys starting with {prefix!r} '
            f'(e.g. {list(loaded)[:3]}); the refiners copy a ResNet stage: '
            f'point prefix at it')
    return weights
