"""The latent-variable showcase: points on an ellipse whose radii depend on an input x.

For an input x the radii are ρ(x) = [αx + β(1 − x), βx + α(1 − x)] · exp(2x), and a sample is
y = [ρ₁(x) cos θ + ε₁, ρ₂(x) sin θ + ε₂] with the latent angle θ ~ U(0, 2π) and ε ~ N(0, noise²).
At x = 0 the ellipse has radii ρ(0) = [β, α] (2 along y₁, 1.5 along y₂ by default); as x grows to 1
the radii swap and grow by e², which traces the horn. θ is what a latent-variable model must infer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_int, check_real, make_generator


def radii(x: Tensor | float, alpha: float = 1.5, beta: float = 2.0) -> Tensor:
    """ρ(x) = [αx + β(1 − x), βx + α(1 − x)] · exp(2x). x: finite float or (n,) -> (2,) or (n, 2),
    float32; alpha, beta: finite reals."""
    x = as_float_tensor("x", x, ndim=(0, 1), dtype=torch.float32)
    check_real("alpha", alpha), check_real("beta", beta)
    rho = torch.stack([alpha * x + beta * (1 - x), beta * x + alpha * (1 - x)], dim=-1)
    return rho * torch.exp(2 * x).unsqueeze(-1)


def _on_ellipse(rho: Tensor, n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    theta = 2 * math.pi * torch.rand(n, generator=g)
    y = rho * torch.stack([theta.cos(), theta.sin()], dim=1)
    return y + noise * torch.randn(n, 2, generator=g), theta


def ellipse(
    n: int = 24,
    x: float = 0.0,
    alpha: float = 1.5,
    beta: float = 2.0,
    noise: float = 1 / 20,
    seed: int | None = None,
) -> tuple[Tensor, Tensor]:
    """n noisy points of the ellipse with radii ρ(x) (one fixed input x).

    Returns (y (n, 2), theta (n,)): the points and their latent angles in [0, 2π).
    """
    check_int("n", n), check_real("x", x), check_real("noise", noise, 0.0)
    check_real("alpha", alpha), check_real("beta", beta)
    g = make_generator(seed)
    return _on_ellipse(radii(x, alpha, beta), n, float(noise), g)


def horn(
    n: int = 1000,
    alpha: float = 1.5,
    beta: float = 2.0,
    noise: float = 1 / 20,
    seed: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The horn: the ellipse with a random input x ~ U(0, 1) per point.

    Returns (x (n, 1), y (n, 2), theta (n,)): x is a column, ready as the input of a conditional
    model f(x); y the points; theta their latent angles in [0, 2π).
    """
    check_int("n", n), check_real("noise", noise, 0.0)
    check_real("alpha", alpha), check_real("beta", beta)
    noise = float(noise)
    g = make_generator(seed)
    x = torch.rand(n, generator=g)
    y, theta = _on_ellipse(radii(x, alpha, beta), n, noise, g)
    return x.unsqueeze(1), y, theta
