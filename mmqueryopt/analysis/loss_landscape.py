"""The loss landscape around trained weights (Li et al., NeurIPS 2018), as
QueryOpt's Figures 4 and 12 draw it.

Two random directions d1, d2 in weight space, each filter-normalised: every
filter (a slice along dim 0 of a weight with two or more dims: a conv's
output channel, a linear layer's row, one row of an embedding table) is
rescaled to the norm of the same filter of the trained weights, so that
moving along a direction changes each filter by the same relative amount
whatever its scale. One-dimensional parameters (biases, BatchNorm and
LayerNorm weights) are zero in both directions: they stay at their trained
values (Li et al.'s ``ignore='biasbn'``). Only trainable parameters move
(``requires_grad``): frozen stages stay as the optimiser left them.

The loss at ``(alpha, beta)`` is the model's own training loss at
``theta + alpha * d1 + beta * d2`` on a fixed set of training batches: the
retriever's ``loss`` with its learned database (ADSH's B) as the
checkpoint holds it, averaged over the batches. The model runs in
training mode, so that the head decodes every auxiliary branch as the loss
expects, with dropout off and, by default, BatchNorm on its running
statistics (Li et al. evaluate in eval mode; ``bn_mode='train'`` uses each
batch's statistics as training did). Whatever a forward changes (a memory
database's rows, BatchNorm's running statistics) is restored after each
batch, so that every grid point sees the checkpoint's state.
"""
import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .figures import DPI, pyplot, save_figure

#: Host bytes per grid point: each loss term's value, the plot's mesh and
#: the JSON text of the values.
BYTES_PER_POINT = 256
BN_MODES = ('eval', 'train')


def filter_normalize(direction: Tensor, weight: Tensor) -> Tensor:
    """Rescale each filter of ``direction`` to the norm of ``weight``'s.

    Args:
        direction (Tensor): A random direction of ``weight``'s shape.
        weight (Tensor): The trained weight; filters are its dim-0 slices.

    Returns:
        Tensor: The normalised direction (zeros for a 1-D weight).
    """
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    dims = tuple(range(1, weight.dim()))
    norm = torch.linalg.vector_norm
    scale = norm(weight, dim=dims, keepdim=True) / (
        norm(direction, dim=dims, keepdim=True) + 1e-10)
    return direction * scale


def trainable_weights(model: nn.Module) -> Dict[str, Tensor]:
    """The parameters that move in the landscape: those with gradient.

    Args:
        model (nn.Module): The model.

    Returns:
        dict[str, Tensor]: Name to parameter, in ``named_parameters``
        order.
    """
    return {name: param for name, param in model.named_parameters()
            if param.requires_grad}


def random_direction(weights: Dict[str, Tensor],
                     generator: torch.Generator) -> Dict[str, Tensor]:
    """One filter-normalised Gaussian direction.

    Args:
        weights (dict[str, Tensor]): :func:`trainable_weights`.
        generator (torch.Generator): A CPU generator; the draw is made on
            the CPU in float32, one tensor per weight in ``weights``' order,
            so that a seed gives the same direction on every device.

    Returns:
        dict[str, Tensor]: Name to direction, on each weight's device and
        dtype.
    """
    direction = {}
    for name, weight in weights.items():
        noise = torch.randn(weight.shape, generator=generator)
        direction[name] = filter_normalize(
            noise, weight.detach().float().cpu()).to(weight)
    return direction


def landscape_mode(model: nn.Module, bn_mode: str = 'eval') -> None:
    """Training mode without its randomness: dropout off and, with
    ``bn_mode='eval'``, BatchNorm on its running statistics.

    Args:
        model (nn.Module): The retriever.
        bn_mode (str): ``'eval'`` or ``'train'`` (batch statistics).
    """
    if bn_mode not in BN_MODES:
        raise ValueError(f'--bn-mode must be one of {BN_MODES}, got '
                         f'{bn_mode!r}')
    model.train()
    for module in model.modules():
        if isinstance(module, (nn.modules.dropout._DropoutNd,
                               nn.MultiheadAttention)):
            module.eval()
        elif bn_mode == 'eval' and isinstance(
                module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def batch_losses(model: nn.Module,
                 batches: Sequence[Tuple[Tensor, list]]) -> Dict[str, float]:
    """The mean over ``batches`` of each logged loss of the model, the
    checkpoint's state restored after each batch.

    Args:
        model (nn.Module): The retriever, in :func:`landscape_mode`.
        batches (Sequence[tuple]): ``(inputs, data_samples)``: preprocessed
            (n, 3, H, W) images and their samples (``gt_label``,
            ``sample_idx``).

    Returns:
        dict[str, float]: ``loss`` (the total the optimiser minimises,
        MMEngine's ``parse_losses``) and each term (e.g. ``loss_hash``,
        ``loss_quant``).
    """
    database = model.database
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()
               if not name.startswith('database.')}
    sums: Dict[str, float] = {}
    try:
        with torch.no_grad():
            for inputs, samples in batches:
                # A memory database writes the batch's rows before its
                # loss reads them: each batch starts from the checkpoint's.
                model.database = copy.deepcopy(database)
                _, log_vars = model.parse_losses(model.loss(inputs, samples))
                for name, value in log_vars.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
    finally:
        model.database = database
        for name, buffer in model.named_buffers():
            if name in buffers:
                buffer.copy_(buffers[name])
    return {name: total / len(batches) for name, total in sums.items()}


def loss_surface(model: nn.Module,
                 batches: Sequence[Tuple[Tensor, list]],
                 directions: Tuple[Dict[str, Tensor], Dict[str, Tensor]],
                 alphas: Sequence[float],
                 betas: Sequence[float],
                 progress: Optional[Callable[[], None]] = None
                 ) -> Dict[str, np.ndarray]:
    """The losses on the grid ``theta + alpha * d1 + beta * d2``.

    Args:
        model (nn.Module): The retriever at theta, in
            :func:`landscape_mode`; its weights are theta again on return.
        batches (Sequence[tuple]): As :func:`batch_losses`.
        directions (tuple[dict, dict]): d1 and d2
            (:func:`random_direction`) over the weights that move.
        alphas (Sequence[float]): Steps along d1 (the plots' x).
        betas (Sequence[float]): Steps along d2 (the plots' y).
        progress (Callable, optional): Called after each grid point.

    Returns:
        dict[str, np.ndarray]: Each loss of :func:`batch_losses` as a
        (len(betas), len(alphas)) float64 array: row i is ``betas[i]``,
        column j ``alphas[j]`` (matplotlib's contour layout).
    """
    first, second = directions
    params = dict(model.named_parameters())
    theta = {name: params[name].detach().clone() for name in first}
    surface: Dict[str, np.ndarray] = {}
    try:
        with torch.no_grad():
            for i, beta in enumerate(betas):
                for j, alpha in enumerate(alphas):
                    for name, weight in theta.items():
                        params[name].copy_(weight + float(alpha) *
                                           first[name] + float(beta) *
                                           second[name])
                    for term, value in batch_losses(model, batches).items():
                        surface.setdefault(
                            term, np.full((len(betas), len(alphas)),
                                          np.nan))[i, j] = value
                    if progress is not None:
                        progress()
    finally:
        with torch.no_grad():
            for name, weight in theta.items():
                params[name].copy_(weight)
    return surface


def memory_estimate(weights: Dict[str, Tensor], input_bytes: int,
                    grid: int) -> Dict[str, int]:
    """Bytes a landscape run needs beyond the loaded model.

    Args:
        weights (dict[str, Tensor]): The weights that move.
        input_bytes (int): The fixed batches' preprocessed images.
        grid (int): Points per axis.

    Returns:
        dict[str, int]: ``device``: two directions and the saved trained
        weights (three copies of the moving weights) plus the batches, on
        the model's device; ``host``: the grid's values, plot and JSON;
        ``total`` their sum (the two are one pool on a CPU).
    """
    weight_bytes = sum(w.numel() * w.element_size() for w in weights.values())
    device = 3 * weight_bytes + input_bytes
    host = grid * grid * BYTES_PER_POINT
    return dict(device=device, host=host, total=device + host)


def available_memory(device: str) -> Dict[str, int]:
    """Free memory: ``host`` (``MemAvailable`` of /proc/meminfo, else the
    free physical pages) and, on a CUDA device, ``device`` (free GPU
    memory)."""
    free = dict(host=_host_available())
    if str(device).startswith('cuda'):
        free['device'] = int(torch.cuda.mem_get_info(
            torch.device(device))[0])
    return free


def _host_available() -> int:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def check_memory(needed: Dict[str, int], free: Dict[str, int],
                 grid: int) -> None:
    """Refuse a run that cannot fit, naming ``--grid`` and the estimate.

    Args:
        needed (dict[str, int]): :func:`memory_estimate`.
        free (dict[str, int]): :func:`available_memory`.
        grid (int): Points per axis.

    Raises:
        ValueError: One line.
    """
    if 'device' in free:
        pools = [('GPU', needed['device'], free['device']),
                 ('host', needed['host'], free['host'])]
    else:
        pools = [('host', needed['total'], free['host'])]
    for pool, need, have in pools:
        if need > have:
            raise ValueError(
                f'--grid {grid} needs about {_size(need)} of {pool} memory '
                f'({grid}x{grid} = {grid * grid} points, the directions and '
                f'the batches), {_size(have)} is available: choose a '
                f'smaller --grid (or fewer --num-batches)')


def _size(num_bytes: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB', 'TB', 'PB'):
        if num_bytes < 1024 or unit == 'PB':
            return f'{num_bytes:.1f} {unit}'
        num_bytes /= 1024


def plot_contour(alphas: Sequence[float], betas: Sequence[float],
                 values: np.ndarray, title: str, out_file: str,
                 levels: int = 20) -> None:
    """Filled contours of ``values`` with labelled lines; the trained
    weights marked at (0, 0). Written atomically.

    Args:
        alphas, betas (Sequence[float]): The axes.
        values (np.ndarray): (len(betas), len(alphas)).
        title (str): The figure's title.
        out_file (str): The PNG.
        levels (int): Contour levels. Defaults to 20.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=DPI)
    try:
        filled = ax.contourf(alphas, betas, values, levels=levels,
                             cmap='viridis')
        lines = ax.contour(alphas, betas, values, levels=levels,
                           colors='white', linewidths=0.5)
        ax.clabel(lines, fontsize=6, fmt='%.3g')
        fig.colorbar(filled, ax=ax, label='loss')
        ax.plot([0], [0], marker='*', color='red', markersize=10)
        ax.set_xlabel('alpha (direction 1)')
        ax.set_ylabel('beta (direction 2)')
        ax.set_title(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, out_file)


def plot_surface(alphas: Sequence[float], betas: Sequence[float],
                 values: np.ndarray, title: str, out_file: str) -> None:
    """``values`` as a 3-D surface over (alpha, beta). Written atomically.

    Args:
        alphas, betas (Sequence[float]): The axes.
        values (np.ndarray): (len(betas), len(alphas)).
        title (str): The figure's title.
        out_file (str): The PNG.
    """
    plt = pyplot()
    fig = plt.figure(figsize=(6.4, 5.6), dpi=DPI)
    try:
        ax = fig.add_subplot(projection='3d')
        x, y = np.meshgrid(alphas, betas)
        ax.plot_surface(x, y, values, cmap='viridis', linewidth=0,
                        antialiased=True)
        ax.set_xlabel('alpha')
        ax.set_ylabel('beta')
        ax.set_zlabel('loss')
        ax.set_title(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, out_file)


def grid_axis(grid: int, span: float) -> List[float]:
    """``grid`` evenly spaced steps over [-span, span].

    An odd ``grid`` puts the trained weights (exactly 0) on the grid.
    """
    axis = np.linspace(-span, span, grid)
    if grid % 2:
        axis[grid // 2] = 0.0
    return axis.tolist()


def training_dataset(cfg):
    """The config's training set read with its test transforms (as
    ``tools/test.py --database encoded`` reads it): the same images at
    every grid point and in every run, no random crops.

    Returns:
        BaseDataset: Indexed as the training loader's dataset, so that an
        image's ``sample_idx`` is its database row.
    """
    from mmqueryopt.registry import DATASETS
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    return DATASETS.build(dataset_cfg)


def draw_batches(num_images: int, num_batches: int, batch_size: int,
                 seed: int) -> List[List[int]]:
    """``num_batches`` batches of distinct training images, drawn without
    replacement by a seeded generator.

    Raises:
        ValueError: The training set has fewer than ``num_batches *
            batch_size`` images.
    """
    wanted = num_batches * batch_size
    if wanted > num_images:
        raise ValueError(
            f'--num-batches {num_batches} x --batch-size {batch_size} = '
            f'{wanted} images, but the training set has {num_images}')
    order = np.random.default_rng(seed).permutation(num_images)[:wanted]
    return [order[b * batch_size:(b + 1) * batch_size].tolist()
            for b in range(num_batches)]


def load_batches(model: nn.Module, dataset, indices: Sequence[Sequence[int]]
                 ) -> List[Tuple[Tensor, list]]:
    """The images of each batch, preprocessed once by the model's data
    preprocessor (without batch augments), on the model's device.

    Returns:
        list[tuple]: ``(inputs, data_samples)`` per batch.
    """
    from mmengine.dataset import pseudo_collate
    batches = []
    for rows in indices:
        data = model.data_preprocessor(
            pseudo_collate([dataset[i] for i in rows]), False)
        batches.append((data['inputs'], data['data_samples']))
    return batches
