"""The shared array-like conversion keeps shapes: 0-d stays 0-d, read-only arrays are copied."""

import numpy as np
import pytest
import torch

from ebm._checks import as_float_tensor, as_index_tensor


@pytest.mark.parametrize("value", [0.5, np.float64(0.5), np.array(0.5), torch.tensor(0.5)])
def test_a_number_stays_zero_dimensional(value):
    out = as_float_tensor("x", value)
    assert out.shape == () and out.item() == 0.5


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


def test_non_contiguous_arrays_keep_their_values():
    array = np.arange(12.0).reshape(3, 4)[:, ::2]  # a strided view
    assert torch.equal(as_float_tensor("x", array), torch.tensor(array.copy()))
