"""TokenPoolHashHead (Table 2's "+S" row): ADSH's hash layer on the mean of
the neck's tokens, checked against a float64 computation by hand."""
import numpy as np
import pytest
import torch

from mmqueryopt.models.heads.token_pool_hash_head import TokenPoolHashHead
from mmqueryopt.registry import MODELS


def test_codes_are_tanh_of_the_layer_on_the_mean_token():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='TokenPoolHashHead', code_length=5,
                             in_channels=6))
    tokens, pos = torch.randn(3, 7, 6), torch.randn(3, 7, 6)
    weight = head.fc.weight.detach().double().numpy()
    bias = head.fc.bias.detach().double().numpy()
    x = tokens.double().numpy()
    expected = np.empty((3, 5))
    for b in range(3):
        mean = [sum(x[b, t, c] for t in range(7)) / 7 for c in range(6)]
        for j in range(5):
            expected[b, j] = np.tanh(
                sum(weight[j, c] * mean[c] for c in range(6)) + bias[j])
    for training in (True, False):
        head.train(training)
        out = head((tokens, pos))
        assert out.shape == (3, 5)
        np.testing.assert_allclose(out.double().detach().numpy(), expected,
                                   rtol=0, atol=1e-6)
    # The position embedding (the same for every image) is not pooled.
    np.testing.assert_array_equal(
        head((tokens, pos + 1)).detach().numpy(),
        head((tokens, pos)).detach().numpy())
    assert head.relaxed_dims == 5
    assert sum(p.numel() for p in head.parameters()) == 6 * 5 + 5


def test_a_map_instead_of_tokens_is_named():
    head = TokenPoolHashHead(4, in_channels=8)
    with pytest.raises(ValueError, match=r'TokenPoolHashHead expects \(B, T, '
                       r'd\) tokens.*\(2, 8, 3, 3\)'):
        head(torch.zeros(2, 8, 3, 3))
    with pytest.raises(ValueError, match=r'model.head.in_channels'):
        head((torch.zeros(2, 5, 6), torch.zeros(2, 5, 6)))
