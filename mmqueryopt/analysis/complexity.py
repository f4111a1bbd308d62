"""Parameters and multiply-accumulates of a hashing config's model.

Counts with MMEngine's ``FlopAnalyzer`` (fvcore's counter: it traces one
forward and counts one multiply-add as one "flop", i.e. MACs) the
multiply-accumulates of the products only: convolutions (also transposed),
linears, matmuls and attention. Normalisations, activations, softmax, adds
and resizing are left out (MMEngine would add norms at one or a few per
element: +0.02 GMACs for QueryOpt's ResNet-50 model in eval mode), which is
how the QueryOpt facts file's 5.21 GMACs were counted.
``scaled_dot_product_attention``, which the attention layers of
``nn.MultiheadAttention``, Swin and ViT call, has no counter in MMEngine; it
is counted here as its two matrix products, QK^T and AV; so is the fused
``_native_multi_head_attention`` that ``nn.MultiheadAttention`` runs for
self-attention in eval mode, with its four projections.

Two figures: inference (eval mode, the k original queries, as testing and
retrieval run) and training (train mode: auxiliary branches and the other
training-only blocks). No pretrained weights are loaded: the count does not
depend on them. Used by ``tools/analysis_tools/get_flops.py`` (one config)
and ``tools/analysis_tools/complexity_table.py`` (every method, the papers'
Table 4).
"""
from typing import Dict, Sequence

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import init_default_scope


def sdpa_flop_jit(inputs, outputs) -> int:
    """MACs of ``scaled_dot_product_attention(q, k, v)``: (..., Lq, d) by
    (..., Lk, d) for the scores and (..., Lq, Lk) by (..., Lk, dv) after the
    softmax."""
    from mmengine.analysis.jit_handles import get_shape
    query, key, value = (get_shape(v) for v in inputs[:3])
    batch = 1
    for size in query[:-2]:
        batch *= size
    len_q, dim = query[-2:]
    len_k, dim_v = key[-2], value[-1]
    return batch * len_q * len_k * (dim + dim_v)


def native_mha_flop_jit(inputs, outputs) -> int:
    """MACs of ``_native_multi_head_attention(q, k, v, ...)`` with
    (B, L, E) inputs: q, k, v and output projections plus QK^T and AV."""
    from mmengine.analysis.jit_handles import get_shape
    query, key = get_shape(inputs[0]), get_shape(inputs[1])
    batch, len_q, dims = query
    len_k = key[1]
    projections = (2 * len_q + 2 * len_k) * dims * dims
    return batch * (projections + 2 * len_q * len_k * dims)


# MMEngine's per-element counters, dropped so that only products count.
_NOT_COUNTED = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm',
                'aten::instance_norm', 'aten::upsample_nearest2d',
                'aten::upsample_bilinear2d', 'aten::adaptive_avg_pool2d',
                'aten::grid_sampler')


def _zero(inputs, outputs) -> int:
    return 0


def count_macs(model: torch.nn.Module, inputs: torch.Tensor) -> int:
    """MACs of the products in ``model(inputs)``, in the model's current
    mode.

    Args:
        model (nn.Module): Any module.
        inputs (Tensor): Its input, e.g. (B, 3, H, W) images.

    Returns:
        int: Multiply-accumulates of the whole batch.
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_jit)
    analyzer.set_op_handle('aten::_native_multi_head_attention',
                           native_mha_flop_jit)
    for name in _NOT_COUNTED:
        # A handle of None would not do: MMEngine 0.10 then ignores the op
        # only when it has no handle already.
        analyzer.set_op_handle(name, _zero)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total()


def complexity(cfg: Config,
               shape: Sequence[int] = (224, 224)) -> Dict[str, int]:
    """Size and cost of ``cfg.model`` for one image.

    Args:
        cfg (Config): A hashing config (any method).
        shape (Sequence[int]): Input (H, W).

    Returns:
        dict: ``params`` and ``trainable_params`` (counts),
        ``inference_macs`` and ``training_macs`` (for one image).
    """
    from mmqueryopt.registry import MODELS
    init_default_scope('mmqueryopt')
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    model = MODELS.build(model_cfg)
    inputs = torch.zeros(1, 3, *shape)
    result = dict(
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters()
                             if p.requires_grad))
    with torch.no_grad():
        model.eval()
        result['inference_macs'] = count_macs(model, inputs)
        model.train()
        # Two images, halved: a BatchNorm1d in train mode refuses a batch
        # of one.
        result['training_macs'] = count_macs(
            model, torch.cat([inputs, inputs])) // 2
    return result
