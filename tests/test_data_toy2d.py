import math

import pytest
import torch

from ebm.data import (
    checkerboard,
    coin_flips,
    grid_of_gaussians,
    parabola,
    ring_of_gaussians,
    two_moons,
)
from ebm.data.toy2d import grid_centers, ring_centers


def test_ring_samples_sit_on_their_modes():
    y = ring_of_gaussians(4000, n_modes=8, radius=2.0, std=0.02, seed=0)
    d, which = torch.cdist(y, ring_centers(8, 2.0)).min(1)
    assert y.shape == (4000, 2)
    # |N(0, σ² I₂)| has mean σ·sqrt(π/2)
    assert d.mean().item() == pytest.approx(0.02 * math.sqrt(math.pi / 2), rel=0.05)
    counts = torch.bincount(which, minlength=8).float()
    assert (counts / 4000 - 1 / 8).abs().max() < 0.02


def test_grid_has_25_modes_centred():
    c = grid_centers(5, 2.0)
    assert c.shape == (25, 2) and torch.allclose(c.mean(0), torch.zeros(2))
    y = grid_of_gaussians(5000, seed=1)
    assert torch.bincount(torch.cdist(y, c).argmin(1), minlength=25).min() > 120


def test_same_seed_same_samples_and_global_rng_untouched():
    state = torch.get_rng_state()
    a, b = two_moons(100, seed=3), two_moons(100, seed=3)
    assert torch.equal(a, b)
    assert torch.equal(state, torch.get_rng_state())


def test_checkerboard_occupies_only_dark_squares():
    y = checkerboard(5000, seed=0)
    square_parity = (torch.floor(y[:, 0] / 2) + torch.floor(y[:, 1] / 2)) % 2
    assert (square_parity == 0).all() and y.abs().max() <= 4


def test_parabola_and_coins():
    y = parabola(2000, noise=0.0, seed=0)
    assert torch.allclose(y[:, 1], y[:, 0] ** 2)
    flips = coin_flips(20000, p_heads=0.3, seed=0)
    # 5 standard errors of a Bernoulli(0.3) mean over 20000 draws
    assert abs(flips.mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 20000)


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_n_is_refused(bad):
    with pytest.raises(ValueError, match="n must be"):
        ring_of_gaussians(bad)
