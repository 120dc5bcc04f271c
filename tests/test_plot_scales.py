"""Colour scales shared by panels: ebm.plot.robust_range, energy_image, colorbar_extend."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from ebm.plot import colorbar_extend, energy_image, robust_range


def test_robust_range_pools_panels_and_ignores_a_spike_and_non_finite_values():
    a = torch.linspace(0, 1, 101)
    b = torch.cat([torch.linspace(1, 2, 100), torch.tensor([1e6, float("inf"), float("nan")])])
    vmin, vmax = robust_range(a, b, lower=0.0, upper=0.99)
    # 201 finite values 0..2 plus one spike: the 99 % quantile is near 2, not 1e6
    assert vmin == pytest.approx(0.0)
    assert 1.9 < vmax < 2.01
    assert robust_range(a) == pytest.approx((0.0, torch.quantile(a, 0.99).item()))


def test_robust_range_refuses_bad_quantiles_and_empty_values():
    with pytest.raises(ValueError, match="upper"):
        robust_range(torch.ones(3), lower=0.5, upper=0.5)
    with pytest.raises(ValueError, match="lower"):
        robust_range(torch.ones(3), lower=-0.1)
    with pytest.raises(ValueError, match="finite"):
        robust_range(torch.tensor([float("nan")]))


def test_robust_range_of_a_constant_is_not_empty():
    vmin, vmax = robust_range(torch.full((5,), 3.0))
    assert vmin == 3.0 and vmax > vmin


def test_colorbar_extend_names_the_clipped_ends():
    v = torch.tensor([0.0, 1.0, 2.0])
    assert colorbar_extend(v, 0.0, 2.0) == "neither"
    assert colorbar_extend(v, 0.5, 2.0) == "min"
    assert colorbar_extend(v, 0.0, 1.5) == "max"
    assert colorbar_extend(v, 0.5, 1.5) == "both"
    assert colorbar_extend(torch.tensor([float("-inf"), float("nan"), 1.0]), 0.0, 1.0) == "min"


def test_energy_image_uses_the_given_range_and_titles_its_colourbar():
    fig, ax = plt.subplots()
    E = torch.arange(16.0).reshape(4, 4)
    image = energy_image(ax, E, (-1, 1), (0, 2), vmin=2.0, vmax=10.0, label="E (nats)")
    assert image.get_clim() == (2.0, 10.0)
    assert ax.get_xlim() == (-1, 1) and ax.get_ylim() == (0, 2)
    colorbar = image.colorbar
    assert colorbar.ax.get_ylabel() == "E (nats)"
    assert colorbar.extend == "both"
    plt.close(fig)


def test_energy_image_gives_infinities_the_end_colours_and_keeps_nan_blank():
    fig, ax = plt.subplots()
    E = torch.tensor([[-float("inf"), 0.0], [float("nan"), float("inf")]])
    image = energy_image(ax, E, (0, 1), (0, 1), vmin=-1.0, vmax=1.0)
    shown = image.get_array()
    assert shown[0, 0] == -1.0 and shown[1, 1] == 1.0 and bool(shown.mask[1, 0])
    assert image.colorbar.extend == "both"  # the infinities lie beyond both ends
    plt.close(fig)
