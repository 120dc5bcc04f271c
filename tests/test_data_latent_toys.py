"""Tests for ebm.data.latent_toys: the ellipse and the horn."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.data import ellipse, horn
from ebm.data.latent_toys import radii


def test_radii_closed_form_at_the_ends():
    torch.testing.assert_close(radii(0.0), torch.tensor([2.0, 1.5]))  # ρ(0) = [β, α]
    torch.testing.assert_close(radii(1.0), torch.tensor([1.5, 2.0]) * math.exp(2))  # [α, β]e²
    torch.testing.assert_close(
        radii(torch.tensor([0.0, 1.0])), torch.stack([radii(0.0), radii(1.0)])
    )


def test_noiseless_ellipse_lies_on_the_curve():
    y, theta = ellipse(n=24, noise=0.0, generator=torch.Generator().manual_seed(0))
    assert y.shape == (24, 2) and theta.shape == (24,) and y.dtype == torch.float32
    assert ((theta >= 0) & (theta < 2 * math.pi)).all()
    torch.testing.assert_close(y, torch.stack([2 * theta.cos(), 1.5 * theta.sin()], 1))
    torch.testing.assert_close((y[:, 0] / 2) ** 2 + (y[:, 1] / 1.5) ** 2, torch.ones(24))


def test_ellipse_noise_and_angles_have_the_stated_distributions():
    n, noise = 20000, 0.1
    y, theta = ellipse(n=n, x=0.3, noise=noise, generator=torch.Generator().manual_seed(1))
    rho = radii(0.3)
    residual = y - rho * torch.stack([theta.cos(), theta.sin()], 1)
    assert residual.mean().abs() < 4 * noise / math.sqrt(2 * n)
    assert residual.std().item() == pytest.approx(noise, rel=0.03)
    # θ ~ U(0, 2π): mean π, variance (2π)²/12
    assert theta.mean().item() == pytest.approx(math.pi, abs=4 * 1.82 / math.sqrt(n))
    assert theta.var().item() == pytest.approx((2 * math.pi) ** 2 / 12, rel=0.03)


def test_horn_points_follow_their_own_radii():
    x, y, theta = horn(500, noise=0.0, generator=torch.Generator().manual_seed(2))
    assert x.shape == (500, 1) and y.shape == (500, 2) and theta.shape == (500,)
    assert ((x >= 0) & (x < 1)).all()
    rho = radii(x[:, 0])
    torch.testing.assert_close(y, rho * torch.stack([theta.cos(), theta.sin()], 1))


def test_seeding_is_reproducible_and_private():
    state = torch.get_rng_state()
    a = horn(10, generator=torch.Generator().manual_seed(3))
    b = horn(10, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(torch.get_rng_state(), state)
    four = ellipse(generator=torch.Generator().manual_seed(4))[0]
    assert not torch.equal(four, ellipse(generator=torch.Generator().manual_seed(5))[0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="n must"):
        ellipse(n=0)
    with pytest.raises(ValueError, match="noise"):
        ellipse(noise=-0.1)
    with pytest.raises(ValueError, match="x must"):
        ellipse(x=float("nan"))
    with pytest.raises(ValueError, match="n must"):
        horn(2.5)
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        horn(5, generator=0)


def test_radii_and_scales_reject_non_finite_values_by_name():
    with pytest.raises(ValueError, match="x contains"):
        radii(float("nan"))
    with pytest.raises(ValueError, match="x contains"):
        radii(torch.tensor([0.5, float("inf")]))
    with pytest.raises(ValueError, match="alpha"):
        radii(0.5, alpha="1.5")
    with pytest.raises(ValueError, match="beta"):
        horn(5, beta=float("inf"))
    with pytest.raises(ValueError, match="noise"):
        horn(5, noise=float("nan"))
    # array-likes and integers are accepted, as float32
    torch.testing.assert_close(radii([0, 1]), radii(torch.tensor([0.0, 1.0])))
