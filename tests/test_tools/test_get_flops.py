"""mmqueryopt.analysis.complexity, which tools/analysis_tools/get_flops.py
prints: products counted as MACs, on a tiny module by hand and on the
ResNet-50 model against the facts file."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch import nn

from conftest import REPO
from mmqueryopt.analysis.complexity import complexity, count_macs


class _Attention(nn.Module):
    """LayerNorm, self-attention and a linear: norms must not count."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.norm(x)
        return self.fc(self.attn(x, x, x, need_weights=False)[0])


@pytest.mark.parametrize('training', [True, False])
def test_attention_is_counted_as_its_products(training):
    # In eval mode torch runs self-attention as one fused native op.
    model = _Attention().train(training)
    tokens, dims = 5, 8
    expected = (
        tokens * dims * 3 * dims  # q, k, v projections
        + tokens * tokens * dims  # QK^T over both heads (2 x 4 features)
        + tokens * tokens * dims  # attention times V
        + tokens * dims * dims  # output projection
        + tokens * dims * 3)  # fc
    with torch.no_grad():
        assert count_macs(model, torch.zeros(1, tokens, dims)) == expected


def test_resnet50_figures_match_the_facts_file():
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    result = complexity(cfg)
    # Facts file: 31,713,664 trainable, 31,939,008 with the frozen stem and
    # layer1; 5.21 GMACs at inference and 5.38 in training mode (12 bits).
    assert result['trainable_params'] == 31_713_664
    assert result['params'] == 31_939_008
    assert result['inference_macs'] / 1e9 == pytest.approx(5.21, abs=0.005)
    assert result['training_macs'] / 1e9 == pytest.approx(5.38, abs=0.005)
