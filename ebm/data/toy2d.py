"""2-D toy distributions for energy landscapes and mode-coverage tests.

Every generator returns a float32 tensor of shape (n, 2) (``coin_flips``: (n, 1)) and draws from a
private generator seeded by ``seed``; the global RNG is never touched.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_positive, make_generator


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return n


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> Tensor:
    """Centres of the ring-of-Gaussians modes, shape (n_modes, 2)."""
    angles = torch.arange(n_modes) * (2 * math.pi / n_modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Centres of the grid-of-Gaussians modes, shape (side², 2), centred on the origin."""
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
    _check_n(n), _check_n(n_modes), check_positive("radius", radius), check_positive("std", std)
    return _mixture(n, ring_centers(n_modes, radius), std, seed)


def grid_of_gaussians(
    n: int, side: int = 5, spacing: float = 2.0, std: float = 0.02, seed: int | None = None
) -> Tensor:
    """Equal mixture of side² isotropic Gaussians on a square grid. (n, 2)"""
    _check_n(n), _check_n(side), check_positive("spacing", spacing), check_positive("std", std)
    return _mixture(n, grid_centers(side, spacing), std, seed)


def two_moons(n: int, noise: float = 0.1, seed: int | None = None) -> Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), Gaussian noise. (n, 2)"""
    _check_n(n)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
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
    """The pinwheel: ``n_arms`` stretched Gaussians twisted by a radius-dependent rotation. (n, 2)"""
    _check_n(n), _check_n(n_arms)
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
    _check_n(n)
    g = make_generator(seed)
    dark = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
    square = dark[torch.randint(len(dark), (n,), generator=g)]
    return 2.0 * (square + torch.rand(n, 2, generator=g)) - 4.0


def parabola(
    n: int, noise: float = 0.05, low: float = -1.5, high: float = 1.5, seed: int | None = None
) -> Tensor:
    """Points near the 1-D manifold y₂ = y₁², y₁ ~ U(low, high), Gaussian noise. (n, 2)"""
    _check_n(n)
    g = make_generator(seed)
    y1 = low + (high - low) * torch.rand(n, generator=g)
    y = torch.stack([y1, y1**2], dim=1)
    return y + noise * torch.randn(n, 2, generator=g)


def coin_flips(n: int, p_heads: float = 0.3, seed: int | None = None) -> Tensor:
    """Bernoulli(p_heads) draws as floats in {0, 1}, shape (n, 1). The notes' GAN uses 0.3."""
    _check_n(n)
    if not 0.0 <= p_heads <= 1.0:
        raise ValueError(f"p_heads must be in [0, 1], got {p_heads!r}")
    g = make_generator(seed)
    return (torch.rand(n, 1, generator=g) < p_heads).float()


def spiral(
    n_per_class: int = 1000, n_classes: int = 3, angle_noise: float = 0.33, seed: int | None = 12345
) -> tuple[Tensor, Tensor]:
    """The notes' spiral (ch. 37 code, which the ch. 27 formula does not match: we follow the code).

    Class c traces y = t·(sin φ, cos φ), t ∈ [0, 1], φ from 2πc/C to 2π(2 + c)/C, with
    N(0, angle_noise²) added to φ. Returns points (n_per_class·C, 2) and labels (n_per_class·C,).
    """
    _check_n(n_per_class)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes!r}")
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
