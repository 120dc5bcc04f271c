import math

import pytest
import torch

from ebm.data import (
    checkerboard,
    coin_flips,
    grid_of_gaussians,
    parabola,
    pinwheel,
    ring_of_gaussians,
    spiral,
    two_moons,
)
from ebm.data.toy2d import grid_centers, ring_centers


def test_ring_samples_sit_on_their_modes():
    y = ring_of_gaussians(
        4000, n_modes=8, radius=2.0, noise=0.02, generator=torch.Generator().manual_seed(0)
    )
    d, which = torch.cdist(y, ring_centers(8, 2.0)).min(1)
    assert y.shape == (4000, 2)
    # |N(0, σ² I₂)| has mean σ·sqrt(π/2)
    assert d.mean().item() == pytest.approx(0.02 * math.sqrt(math.pi / 2), rel=0.05)
    counts = torch.bincount(which, minlength=8).float()
    assert (counts / 4000 - 1 / 8).abs().max() < 0.02


def test_grid_has_25_modes_centred():
    c = grid_centers(5, 2.0)
    assert c.shape == (25, 2) and torch.allclose(c.mean(0), torch.zeros(2))
    y = grid_of_gaussians(5000, generator=torch.Generator().manual_seed(1))
    assert torch.bincount(torch.cdist(y, c).argmin(1), minlength=25).min() > 120


def test_same_generator_state_same_samples_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = two_moons(100, generator=torch.Generator().manual_seed(3))
    b = two_moons(100, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.get_rng_state())


def test_no_generator_draws_from_the_global_rng_like_torch():
    g = torch.Generator().manual_seed(5)
    with torch.random.fork_rng(devices=[]):  # restored on exit: no global side effect
        torch.set_rng_state(g.get_state())
        from_global = checkerboard(50)
        assert not torch.equal(torch.get_rng_state(), g.get_state())  # the global RNG advanced
    assert torch.equal(from_global, checkerboard(50, generator=g))


def test_checkerboard_occupies_only_dark_squares():
    y = checkerboard(5000, generator=torch.Generator().manual_seed(0))
    square_parity = (torch.floor(y[:, 0] / 2) + torch.floor(y[:, 1] / 2)) % 2
    assert (square_parity == 0).all() and y.abs().max() <= 4


def test_parabola_and_coins():
    y = parabola(2000, noise=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(y[:, 1], y[:, 0] ** 2)
    flips = coin_flips(20000, p_heads=0.3, generator=torch.Generator().manual_seed(0))
    # 5 standard errors of a Bernoulli(0.3) mean over 20000 draws
    assert abs(flips.mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 20000)


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_n_is_refused(bad):
    with pytest.raises(ValueError, match="n must be"):
        ring_of_gaussians(bad)


# ---- the input convention (issue 12): every count and scale, by its own name ---------------------

_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ring_of_gaussians(5, n_modes=0), "n_modes must"),
        (lambda: ring_of_gaussians(5, n_modes=2.5), "n_modes must"),
        (lambda: ring_of_gaussians(5, radius=_NAN), "radius"),
        (lambda: ring_of_gaussians(5, noise=_INF), "noise"),
        (lambda: grid_of_gaussians(5, noise=-0.1), "noise"),
        (lambda: grid_of_gaussians(5, side=0), "side must"),
        (lambda: grid_of_gaussians(5, spacing="2"), "spacing"),
        (lambda: two_moons(5, noise=_NAN), "noise"),
        (lambda: two_moons(5, noise=-1.0), "noise"),
        (lambda: two_moons(5, noise=_INF), "noise"),
        (lambda: two_moons(5, noise="0.1"), "noise"),
        (lambda: pinwheel(5, n_arms=0), "n_arms must"),
        (lambda: pinwheel(5, radial_std=-1.0), "radial_std"),
        (lambda: pinwheel(5, tangential_std=_NAN), "tangential_std"),
        (lambda: pinwheel(5, rate=_INF), "rate"),
        (lambda: checkerboard(True), "n must"),
        (lambda: parabola(5, noise=-1.0), "noise"),
        (lambda: parabola(5, low=_NAN), "low"),
        (lambda: parabola(5, high=_INF), "high"),
        (lambda: parabola(5, low=1.0, high=0.0), "high must be > low"),
        (lambda: coin_flips(5, p_heads="0.3"), "p_heads"),
        (lambda: coin_flips(5, p_heads=_NAN), "p_heads"),
        (lambda: spiral(n_per_class=0), "n_per_class must"),
        (lambda: spiral(n_classes=2.5), "n_classes must"),
        (lambda: spiral(noise=-1.0), "noise"),
        (lambda: spiral(noise=_NAN), "noise"),
        (lambda: ring_centers(n_modes=0), "n_modes must"),
        (lambda: grid_centers(spacing=_NAN), "spacing"),
        (lambda: ring_of_gaussians(5, generator=-1), "generator"),
        (lambda: two_moons(5, generator="0"), "generator"),
    ],
)
def test_every_count_and_scale_is_validated_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA generator")
def test_a_generator_on_another_device_is_refused_by_name():
    with pytest.raises(ValueError, match="generator must be a cpu generator"):
        two_moons(5, generator=torch.Generator(device="cuda").manual_seed(0))
