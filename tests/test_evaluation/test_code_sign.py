"""The one sign rule of the package: ties to +1, type and dtype kept."""
import numpy as np
import pytest
import torch

from mmqueryopt.evaluation.functional.codes import pack_codes, sign


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64,
                                   torch.bfloat16])
def test_torch_values(dtype):
    values = torch.tensor([[-2.5, -1e-30, 0.0, -0.0, 1e-30, 3.0]],
                          dtype=dtype)
    codes = sign(values)
    assert codes.dtype == dtype and codes.shape == values.shape
    # -0.0 >= 0 holds: a tie, like +0.0.
    assert codes.tolist() == [[-1, -1, 1, 1, 1, 1]]
    # torch.sign would leave the ties at 0: a third value in a code.
    assert torch.sign(values).eq(0).sum() == 2


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64,
                                   np.int64])
def test_numpy_values(dtype):
    values = np.array([-3, 0, 2], dtype=dtype)
    codes = sign(values)
    assert isinstance(codes, np.ndarray) and codes.dtype == dtype
    assert codes.tolist() == [-1, 1, 1]


def test_nan_is_minus_one_and_lists_are_arrays():
    assert sign(np.array([np.nan, 0.0])).tolist() == [-1.0, 1.0]
    assert sign(torch.tensor([float('nan')])).tolist() == [-1.0]
    assert sign([0.5, -0.5]).tolist() == [1.0, -1.0]


def test_signs_pack_as_the_bits_of_non_negative_values():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 13)).astype(np.float32)
    values[::7, ::3] = 0.0
    packed, nbits = pack_codes(sign(values))
    assert nbits == 13
    np.testing.assert_array_equal(
        packed, np.packbits(values >= 0, axis=1))
