"""The latent-variable showcase: points on an ellipse whose radii depend on an input x.

For an input x the radii are ρ(x) = [αx + β(1 − x), βx + α(1 − x)] · exp(2x), and a sample is
y = [ρ₁(x) cos θ + ε₁, ρ₂(x) sin θ + ε₂] with the latent angle θ ~ U(0, 2π) and ε ~ N(0, noise²).
At x = 0 the ellipse has radii ρ(0) = [β, α] (2 along y₁, 1.5 along y₂ by default); as x grows to 1
the radii swap and grow by e², which traces the horn. θ is what a latent-variable model must infer.

Both generators draw from ``generator``: a ``torch.Generator`` for reproducible data, or None for
torch's global RNG (as ``torch.randn`` does).

>>> import torch
>>> x, y, theta = horn(500, noise=0.0, generator=torch.Generator().manual_seed(0))
>>> x.shape, y.shape, theta.shape
(torch.Size([500, 1]), torch.Size([500, 2]), torch.Size([500]))
>>> torch.allclose(y, radii(x[:, 0]) * torch.stack([theta.cos(), theta.sin()], 1))
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_generator, check_int, check_real
from ebm._deprecation import renamed_arguments, seed_to_generator

__all__ = ["ellipse", "horn", "radii"]


def radii(x: Tensor | float, alpha: float = 1.5, beta: float = 2.0) -> Tensor:
    """ρ(x) = [αx + β(1 − x), βx + α(1 − x)] · exp(2x), the ellipse's radii at input x.

    x: a finite float or (n,) -> (2,) or (n, 2), float32; alpha, beta: finite reals, the radii
    (β, α) at x = 0.
    """
    x = as_float_tensor("x", x, ndim=(0, 1), dtype=torch.float32)
    check_real("alpha", alpha), check_real("beta", beta)
    rho = torch.stack([alpha * x + beta * (1 - x), beta * x + alpha * (1 - x)], dim=-1)
    return rho * torch.exp(2 * x).unsqueeze(-1)


def _on_ellipse(
    rho: Tensor, n: int, noise: float, g: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    theta = 2 * math.pi * torch.rand(n, generator=g)
    y = rho * torch.stack([theta.cos(), theta.sin()], dim=1)
    return y + noise * torch.randn(n, 2, generator=g), theta


@renamed_arguments(seed=("generator", seed_to_generator))
def ellipse(
    n: int = 24,
    x: float = 0.0,
    alpha: float = 1.5,
    beta: float = 2.0,
    noise: float = 1 / 20,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """n noisy points of the ellipse with radii ρ(x) (one fixed input x).

    n: an int >= 1; x: the input, a finite real; alpha, beta: finite reals (see ``radii``);
    noise: the std of the Gaussian noise added to each coordinate (finite, >= 0); generator:
    the random source (None: torch's global RNG).
    Returns (y (n, 2), theta (n,)): the points and their latent angles in [0, 2π).
    """
    check_int("n", n), check_real("x", x), check_real("noise", noise, 0.0)
    check_real("alpha", alpha), check_real("beta", beta)
    check_generator("generator", generator, "cpu")
    return _on_ellipse(radii(x, alpha, beta), n, float(noise), generator)


@renamed_arguments(seed=("generator", seed_to_generator))
def horn(
    n: int = 1000,
    alpha: float = 1.5,
    beta: float = 2.0,
    noise: float = 1 / 20,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The horn: the ellipse with a random input x ~ U(0, 1) per point.

    n: an int >= 1; alpha, beta: finite reals (see ``radii``); noise: the std of the Gaussian
    noise added to each coordinate (finite, >= 0); generator: the random source (None: torch's
    global RNG).
    Returns (x (n, 1), y (n, 2), theta (n,)): x is a column, ready as the input of a conditional
    model f(x); y the points; theta their latent angles in [0, 2π).
    """
    check_int("n", n), check_real("noise", noise, 0.0)
    check_real("alpha", alpha), check_real("beta", beta)
    check_generator("generator", generator, "cpu")
    noise = float(noise)
    g = generator
    x = torch.rand(n, generator=g)
    y, theta = _on_ellipse(radii(x, alpha, beta), n, noise, g)
    return x.unsqueeze(1), y, theta
