"""2-D toy distributions for energy landscapes and mode-coverage tests.

Every generator returns a float32 tensor of shape (n, 2) (``coin_flips``: (n, 1)) and draws from a
private generator seeded by ``seed``; the global RNG is never touched. Every count and scale is
validated by name before any draw: counts are ints >= 1, noise levels finite and >= 0, radii
and spacings finite and > 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_int, check_positive, check_real, make_generator


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> Tensor:
    """Centres of the ring-of-Gaussians modes, shape (n_modes, 2)."""
    check_int("n_modes", n_modes), check_positive("radius", radius)
    angles = torch.arange(n_modes) * (2 * math.pi / n_modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Centres of the grid-of-Gaussians modes, shape (side², 2), centred on the origin."""
    check_int("side", side), check_positive("spacing", spacing)
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def _mixture(n: int, centers: Tensor, std: float, seed: int | None) -> Tensor:
    g = make_generator(seed)
    which = torch.randint(len(centers), (n,), generator=g)
    return centers[which] + std * torch.randn(n, 2, generator=g)


def ring_of_gaussians(
    n: int, n_modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int | None = None
) -> Tensor:
    """Equal mixture of ``n_modes`` isotropic Gaussians on a circle of ``radius``. (n, 2)"""
    check_int("n", n), check_int("n_modes", n_modes), check_positive("radius", radius)
    check_positive("std", std)
    return _mixture(n, ring_centers(n_modes, radius), std, seed)


def grid_of_gaussians(
    n: int, side: int = 5, spacing: float = 2.0, std: float = 0.02, seed: int | None = None
) -> Tensor:
    """Equal mixture of side² isotropic Gaussians on a square grid. (n, 2)"""
    check_int("n", n), check_int("side", side), check_positive("spacing", spacing)
    check_positive("std", std)
    return _mixture(n, grid_centers(side, spacing), std, seed)


def two_moons(n: int, noise: float = 0.1, seed: int | None = None) -> Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), Gaussian noise. (n, 2)"""
    check_int("n", n), check_real("noise", noise, 0.0)
    g = make_generator(seed)
    n_upper = n // 2
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([t.cos(), t.sin()], dim=1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    y = torch.cat([upper[:n_upper], lower[n_upper:]])
    return y + noise * torch.randn(n, 2, generator=g)


def pinwheel(
    n: int,
    n_arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
    seed: int | None = None,
) -> Tensor:
    """The pinwheel: ``n_arms`` stretched Gaussians twisted by a radius-dependent rotation. (n, 2)

    radial_std, tangential_std: finite, >= 0; rate: the twist, any finite real.
    """
    check_int("n", n), check_int("n_arms", n_arms)
    check_real("radial_std", radial_std, 0.0), check_real("tangential_std", tangential_std, 0.0)
    check_real("rate", rate)
    g = make_generator(seed)
    arm = torch.randint(n_arms, (n,), generator=g)
    feats = torch.randn(n, 2, generator=g) * torch.tensor([radial_std, tangential_std])
    feats[:, 0] += 1.0
    angle = arm * (2 * math.pi / n_arms) + rate * feats[:, 0].exp()
    c, s = angle.cos(), angle.sin()
    return 2 * torch.stack(
        [c * feats[:, 0] - s * feats[:, 1], s * feats[:, 0] + c * feats[:, 1]], 1
    )


def checkerboard(n: int, seed: int | None = None) -> Tensor:
    """Uniform on the 8 dark squares of a 4×4 checkerboard over [-4, 4]². (n, 2)"""
    check_int("n", n)
    g = make_generator(seed)
    dark = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
    square = dark[torch.randint(len(dark), (n,), generator=g)]
    return 2.0 * (square + torch.rand(n, 2, generator=g)) - 4.0


def parabola(
    n: int, noise: float = 0.05, low: float = -1.5, high: float = 1.5, seed: int | None = None
) -> Tensor:
    """Points near the 1-D manifold y₂ = y₁², y₁ ~ U(low, high) (finite, low < high), Gaussian
    noise (finite, >= 0). (n, 2)"""
    check_int("n", n), check_real("noise", noise, 0.0)
    check_real("low", low), check_real("high", high)
    if not low < high:
        raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
    g = make_generator(seed)
    y1 = low + (high - low) * torch.rand(n, generator=g)
    y = torch.stack([y1, y1**2], dim=1)
    return y + noise * torch.randn(n, 2, generator=g)


def coin_flips(n: int, p_heads: float = 0.3, seed: int | None = None) -> Tensor:
    """Bernoulli(p_heads) draws as floats in {0, 1}, shape (n, 1). The notes' GAN uses 0.3."""
    check_int("n", n), check_real("p_heads", p_heads, 0.0, 1.0)
    g = make_generator(seed)
    return (torch.rand(n, 1, generator=g) < p_heads).float()


def spiral(
    n_per_class: int = 1000, n_classes: int = 3, angle_noise: float = 0.33, seed: int | None = 12345
) -> tuple[Tensor, Tensor]:
    """The notes' spiral (ch. 37 code, which the ch. 27 formula does not match: we follow the code).

    Class c traces y = t·(sin φ, cos φ), t ∈ [0, 1], φ from 2πc/C to 2π(2 + c)/C, with
    N(0, angle_noise²) added to φ (angle_noise finite, >= 0). Returns points (n_per_class·C, 2)
    and labels (n_per_class·C,).
    """
    check_int("n_per_class", n_per_class), check_int("n_classes", n_classes, minimum=2)
    check_real("angle_noise", angle_noise, 0.0)
    g = make_generator(seed)
    t = torch.linspace(0, 1, n_per_class)
    points, labels = [], []
    for c in range(n_classes):
        phi = torch.linspace(
            2 * math.pi * c / n_classes, 2 * math.pi * (2 + c) / n_classes, n_per_class
        )
        phi = phi + angle_noise * torch.randn(n_per_class, generator=g)
        points.append(t[:, None] * torch.stack([phi.sin(), phi.cos()], dim=1))
        labels.append(torch.full((n_per_class,), c, dtype=torch.int64))
    return torch.cat(points), torch.cat(labels)
