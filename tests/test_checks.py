"""ebm._checks: the shared input vocabulary."""

import math

import numpy as np
import pytest
import torch

from ebm._checks import as_float_tensor, as_index_tensor, check_finite
from ebm.data.latent_toys import radii


def test_as_float_tensor_keeps_the_shape_of_numbers_and_arrays():
    # np.ascontiguousarray turns 0-d into 1-d; a Python number must stay a 0-d tensor
    for value, shape in [
        (0.5, ()),
        (3, ()),
        (np.float32(0.5), ()),
        (np.array(2.0), ()),
        ([1.0, 2.0], (2,)),
        (np.zeros((2, 3))[:, ::2], (2, 2)),  # non-contiguous
        (np.zeros((0, 3)), (0, 3)),
    ]:
        assert as_float_tensor("x", value).shape == shape, value
    assert as_float_tensor("x", 0.5, ndim=0).item() == 0.5
    # a float into radii gives (2,), as its docstring says (it gave (1, 2))
    torch.testing.assert_close(radii(0.0), torch.tensor([2.0, 1.5]))


def test_read_only_arrays_are_copied_not_warned_about():
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    array.flags.writeable = False
    out = as_float_tensor("x", array)  # warnings are errors in the tests
    assert out.shape == (2, 3) and torch.equal(
        out, torch.arange(6.0, dtype=torch.float64).view(2, 3)
    )
    labels = np.array([2, 0, 1])
    labels.flags.writeable = False
    assert torch.equal(as_index_tensor("y", labels), torch.tensor([2, 0, 1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_check_finite_sum_shortcut_never_hides_or_invents_a_non_finite_value(dtype):
    big = torch.finfo(dtype).max
    # finite values whose sum overflows: still accepted (the elementwise test decides)
    assert check_finite("x", torch.tensor([big, big], dtype=dtype)) is not None
    # +inf and −inf cancel to NaN in the sum; a lone NaN, inf or −inf: all refused
    for bad in ([math.inf, -math.inf], [1.0, math.nan], [math.inf, 1.0], [-math.inf, 0.0]):
        with pytest.raises(ValueError, match="x contains NaN or inf"):
            check_finite("x", torch.tensor(bad, dtype=dtype))
    assert check_finite("x", torch.tensor([], dtype=dtype)).numel() == 0


def test_check_finite_accepts_integers_and_bools_without_testing():
    assert check_finite("x", torch.tensor([2**62, 2**62])).dtype == torch.int64
    assert check_finite("x", torch.tensor([True, False])).dtype == torch.bool
