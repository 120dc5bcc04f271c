"""2-D toy distributions for energy landscapes and mode-coverage tests.

Every generator returns a float32 tensor of shape (n, 2) (``coin_flips``: (n, 1)) and draws
its random numbers from ``generator``: a ``torch.Generator`` for reproducible data, or None for
torch's global RNG (as ``torch.randn`` does). Every count and scale is validated by name before
any draw: counts are ints >= 1, noise levels finite and >= 0, radii and spacings finite and > 0.
``noise`` is always the standard deviation of the Gaussian noise added to each coordinate.

>>> import torch
>>> from ebm.data import two_moons
>>> y = two_moons(200, noise=0.05, generator=torch.Generator().manual_seed(0))
>>> y.shape, y.dtype
(torch.Size([200, 2]), torch.float32)
>>> torch.equal(y, two_moons(200, noise=0.05, generator=torch.Generator().manual_seed(0)))
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_generator, check_int, check_positive, check_real
from ebm._deprecation import renamed_arguments, seed_to_generator

__all__ = [
    "checkerboard",
    "coin_flips",
    "grid_centers",
    "grid_of_gaussians",
    "parabola",
    "pinwheel",
    "ring_centers",
    "ring_of_gaussians",
    "spiral",
    "two_moons",
]

_SEED = ("generator", seed_to_generator)


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> Tensor:
    """Centres of the ring-of-Gaussians modes, shape (n_modes, 2).

    n_modes: an int >= 1, the modes at angles 2πk/n_modes; radius: finite, > 0.
    """
    check_int("n_modes", n_modes), check_positive("radius", radius)
    angles = torch.arange(n_modes) * (2 * math.pi / n_modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Centres of the grid-of-Gaussians modes, shape (side², 2), centred on the origin.

    side: an int >= 1, modes per row; spacing: finite, > 0, the distance between neighbours.
    """
    check_int("side", side), check_positive("spacing", spacing)
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def _mixture(n: int, centers: Tensor, noise: float, g: torch.Generator | None) -> Tensor:
    which = torch.randint(len(centers), (n,), generator=g)
    return centers[which] + noise * torch.randn(n, 2, generator=g)


@renamed_arguments(seed=_SEED, std="noise")
def ring_of_gaussians(
    n: int,
    n_modes: int = 8,
    radius: float = 2.0,
    noise: float = 0.02,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Equal mixture of ``n_modes`` isotropic Gaussians on a circle of ``radius``. (n, 2)

    n: an int >= 1; n_modes: an int >= 1 (centres: ``ring_centers``); radius: finite, > 0;
    noise: each Gaussian's std (finite, >= 0); generator: the random source (None: torch's
    global RNG). Old names ``std`` and ``seed`` work until 0.3, with a DeprecationWarning.
    """
    check_int("n", n), check_int("n_modes", n_modes), check_positive("radius", radius)
    check_real("noise", noise, 0.0), check_generator("generator", generator, "cpu")
    return _mixture(n, ring_centers(n_modes, radius), float(noise), generator)


@renamed_arguments(seed=_SEED, std="noise")
def grid_of_gaussians(
    n: int,
    side: int = 5,
    spacing: float = 2.0,
    noise: float = 0.02,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Equal mixture of side² isotropic Gaussians on a square grid. (n, 2)

    n: an int >= 1; side: an int >= 1, modes per row (centres: ``grid_centers``); spacing:
    finite, > 0, the distance between neighbouring modes; noise: each Gaussian's std (finite,
    >= 0); generator: the random source (None: torch's global RNG). Old names ``std`` and
    ``seed`` work until 0.3, with a DeprecationWarning.
    """
    check_int("n", n), check_int("side", side), check_positive("spacing", spacing)
    check_real("noise", noise, 0.0), check_generator("generator", generator, "cpu")
    return _mixture(n, grid_centers(side, spacing), float(noise), generator)


@renamed_arguments(seed=_SEED)
def two_moons(n: int, noise: float = 0.1, *, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), Gaussian noise. (n, 2)

    n: an int >= 1 (n // 2 points on the upper moon); noise: the std of the Gaussian noise
    (finite, >= 0); generator: the random source (None: torch's global RNG).

    >>> import torch
    >>> y = two_moons(4, noise=0.0, generator=torch.Generator().manual_seed(0))
    >>> bool(((y[:2].norm(dim=1) - 1).abs() < 1e-6).all())  # the upper moon: the unit circle
    True
    """
    (
        check_int("n", n),
        check_real("noise", noise, 0.0),
        check_generator("generator", generator, "cpu"),
    )
    g = generator
    n_upper = n // 2
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([t.cos(), t.sin()], dim=1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    y = torch.cat([upper[:n_upper], lower[n_upper:]])
    return y + noise * torch.randn(n, 2, generator=g)


@renamed_arguments(seed=_SEED)
def pinwheel(
    n: int,
    n_arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The pinwheel: ``n_arms`` stretched Gaussians twisted by a radius-dependent rotation. (n, 2)

    n, n_arms: ints >= 1; radial_std, tangential_std: each arm's std along and across it before
    the twist (finite, >= 0: they shape the arms, no noise is added on top); rate: the twist,
    any finite real; generator: the random source (None: torch's global RNG).
    """
    check_int("n", n), check_int("n_arms", n_arms)
    check_real("radial_std", radial_std, 0.0), check_real("tangential_std", tangential_std, 0.0)
    check_real("rate", rate), check_generator("generator", generator, "cpu")
    g = generator
    arm = torch.randint(n_arms, (n,), generator=g)
    feats = torch.randn(n, 2, generator=g) * torch.tensor([radial_std, tangential_std])
    feats[:, 0] += 1.0
    angle = arm * (2 * math.pi / n_arms) + rate * feats[:, 0].exp()
    c, s = angle.cos(), angle.sin()
    return 2 * torch.stack(
        [c * feats[:, 0] - s * feats[:, 1], s * feats[:, 0] + c * feats[:, 1]], 1
    )


@renamed_arguments(seed=_SEED)
def checkerboard(n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Uniform on the 8 dark squares of a 4×4 checkerboard over [-4, 4]². (n, 2)

    n: an int >= 1; generator: the random source (None: torch's global RNG).
    """
    check_int("n", n), check_generator("generator", generator, "cpu")
    g = generator
    dark = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
    square = dark[torch.randint(len(dark), (n,), generator=g)]
    return 2.0 * (square + torch.rand(n, 2, generator=g)) - 4.0


@renamed_arguments(seed=_SEED)
def parabola(
    n: int,
    noise: float = 0.05,
    low: float = -1.5,
    high: float = 1.5,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Points near the 1-D manifold y₂ = y₁², y₁ ~ U(low, high). (n, 2)

    n: an int >= 1; noise: the std of the Gaussian noise added to both coordinates (finite,
    >= 0); low < high: finite; generator: the random source (None: torch's global RNG).
    """
    check_int("n", n), check_real("noise", noise, 0.0)
    check_real("low", low), check_real("high", high)
    if not low < high:
        raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
    check_generator("generator", generator, "cpu")
    g = generator
    y1 = low + (high - low) * torch.rand(n, generator=g)
    y = torch.stack([y1, y1**2], dim=1)
    return y + noise * torch.randn(n, 2, generator=g)


@renamed_arguments(seed=_SEED)
def coin_flips(n: int, p_heads: float = 0.3, *, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli(p_heads) draws as floats in {0, 1}, shape (n, 1). The notes' GAN uses 0.3.

    n: an int >= 1; p_heads: the probability of 1, in [0, 1]; generator: the random source
    (None: torch's global RNG).
    """
    check_int("n", n), check_real("p_heads", p_heads, 0.0, 1.0)
    check_generator("generator", generator, "cpu")
    return (torch.rand(n, 1, generator=generator) < p_heads).float()


@renamed_arguments(seed=_SEED, angle_noise="noise")
def spiral(
    n_per_class: int = 1000,
    n_classes: int = 3,
    noise: float = 0.33,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The notes' spiral (ch. 37 code, which the ch. 27 formula does not match: we follow the code).

    Class c traces y = t·(sin φ, cos φ), t ∈ [0, 1] (n_per_class evenly spaced values), φ from
    2πc/C to 2π(2 + c)/C, with N(0, noise²) added to the ANGLE φ (not to y).
    n_per_class: an int >= 1; n_classes: C, an int >= 2; noise: the std of the angle noise in
    radians (finite, >= 0); generator: the random source (None: torch's global RNG; before 0.2
    the default was the seed 12345: pass ``torch.Generator().manual_seed(12345)`` for that data).
    Old names ``angle_noise`` and ``seed`` work until 0.3, with a DeprecationWarning.
    Returns points (n_per_class·C, 2) float32 and labels (n_per_class·C,) int64, class-major.

    >>> import torch
    >>> y, labels = spiral(100, n_classes=3, generator=torch.Generator().manual_seed(0))
    >>> y.shape, labels.bincount().tolist()
    (torch.Size([300, 2]), [100, 100, 100])
    """
    check_int("n_per_class", n_per_class), check_int("n_classes", n_classes, minimum=2)
    check_real("noise", noise, 0.0), check_generator("generator", generator, "cpu")
    g = generator
    t = torch.linspace(0, 1, n_per_class)
    points, labels = [], []
    for c in range(n_classes):
        phi = torch.linspace(
            2 * math.pi * c / n_classes, 2 * math.pi * (2 + c) / n_classes, n_per_class
        )
        phi = phi + noise * torch.randn(n_per_class, generator=g)
        points.append(t[:, None] * torch.stack([phi.sin(), phi.cos()], dim=1))
        labels.append(torch.full((n_per_class,), c, dtype=torch.int64))
    return torch.cat(points), torch.cat(labels)
