"""Score-matching losses: make the energy flat at the data without sampling from the model.

The model's score is s(x) = −∇ₓE(x) (low energy = likely). Hyvärinen's objective
    J(E) = E_data[½‖∇E(x)‖² − ΔE(x)]
equals ½ E‖s − ∇log p_data‖² up to a constant. ``exact_score_matching_loss`` computes the
Laplacian with one backward pass per dimension; the sliced estimator replaces ΔE by vᵀ(∇²E)v with
random projections v (E[vvᵀ] = I makes it unbiased); the denoising one regresses the score of
noisy data onto the known score of the Gaussian corruption.

All losses take an energy (callable (B, D) -> (B,)) and data x (B, D), return a scalar, and keep
the graph so the loss can be back-propagated into the energy's parameters. x may be an array-like;
integers become floats, and an ``nn.Module`` energy's parameter dtype is used (float64 data into
a float32 energy is computed in float32). As losses, they do not read x's values (no host sync):
NaN propagates. Hyper-parameters are validated by name. The sliced and denoising losses draw
random numbers from ``generator`` (a ``torch.Generator``; None: torch's global RNG).

>>> import torch
>>> from ebm.energies import GaussianEnergy
>>> x = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0))  # data ~ N(0, I)
>>> right = GaussianEnergy(torch.zeros(2), torch.eye(2))  # the data's own energy
>>> wrong = GaussianEnergy(torch.zeros(2), 4 * torch.eye(2))  # too wide
>>> bool(exact_score_matching_loss(right, x) < exact_score_matching_loss(wrong, x))
True
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    input_gradient,
    module_dtype,
    per_sample_energies,
)

__all__ = [
    "denoising_score_matching_loss",
    "exact_score_matching_loss",
    "sliced_score_matching_loss",
]


def __dir__() -> list[str]:
    return sorted(__all__)


def _check(energy, x: object, generator: object = None) -> Tensor:
    if not callable(energy):
        raise ValueError(
            f"energy must be callable (B, D) -> (B,) or (B, 1), got {type(energy).__name__}"
        )
    x = as_float_tensor("x", x, ndim=2, finite=False, dtype=module_dtype(energy))
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (B, D) with B, D >= 1, got {tuple(x.shape)}")
    check_generator("generator", generator)
    return x


def _energy_gradient(energy, x: Tensor) -> tuple[Tensor, Tensor]:
    """(x with requires_grad, ∇ₓE(x) with create_graph=True)."""
    x = x.detach().requires_grad_(True)
    e = per_sample_energies("energy", energy(x), x.shape[0])
    grad = input_gradient("energy", e, x, create_graph=True)
    return x, grad


def exact_score_matching_loss(energy, x: Tensor) -> Tensor:
    """J = mean over x of ½‖∇E(x)‖² − ΔE(x), the Laplacian by one backward pass per dimension.

    energy: callable (B, D) -> (B,) (or (B, 1), squeezed), low = likely (an ``ebm.Energy`` or any function); x: (B, D)
    data. Returns a scalar, differentiable w.r.t. the energy's parameters. Cost grows with D;
    use the sliced or denoising losses in high dimension.
    """
    x = _check(energy, x)
    with torch.enable_grad():
        x, grad = _energy_gradient(energy, x)
        laplacian = sum(
            torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i]
            for i in range(x.shape[1])
        )
        return (0.5 * grad.pow(2).sum(1) - laplacian).mean()


def sliced_score_matching_loss(
    energy,
    x: Tensor,
    n_projections: int = 1,
    variance_reduction: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sliced score matching (Song et al. 2019), an unbiased estimate of the exact J.

    For v ~ N(0, I): vᵀ(∇²E)v estimates ΔE. With ``variance_reduction`` the ½‖∇E‖² term is kept
    exact (SSM-VR); without it, ½(vᵀ∇E)² estimates it too (plain SSM).
    energy: callable (B, D) -> (B,) (or (B, 1), squeezed), low = likely; x: (B, D) data.
    n_projections: the number of v per sample, an int >= 1; variance_reduction: a bool;
    generator: the source of v (None: torch's global RNG). Returns a scalar.
    """
    x = _check(energy, x, generator)
    check_int("n_projections", n_projections, minimum=1)
    check_choice("variance_reduction", variance_reduction, (False, True))
    with torch.enable_grad():
        x, grad = _energy_gradient(energy, x)
        v = torch.randn(
            (n_projections, *x.shape), generator=generator, device=x.device, dtype=x.dtype
        )
        vg = (v * grad).sum(-1)  # (P, B): vᵀ∇E
        # one Hessian-vector product per projection: ∇ₓ(vᵀ∇E) = (∇²E) v
        hv = torch.stack(
            [
                torch.autograd.grad(vg[p].sum(), x, create_graph=True)[0]
                for p in range(n_projections)
            ]
        )
        vhv = (v * hv).sum(-1)  # (P, B)
        first = 0.5 * grad.pow(2).sum(1) if variance_reduction else 0.5 * vg.pow(2)
        return (first - vhv).mean()


def denoising_score_matching_loss(
    energy, x: Tensor, sigma: float, generator: torch.Generator | None = None
) -> Tensor:
    """Denoising score matching (Vincent 2011) at noise level ``sigma``.

    x̃ = x + σε and the corruption's score is −ε/σ, so the loss is mean ½σ²‖−∇E(x̃) + ε/σ‖²
    (the σ² weight keeps its scale independent of σ). Its minimiser is the score of the noisy data
    density p_σ = p_data ⊛ N(0, σ²I).
    energy: callable (B, D) -> (B,) (or (B, 1), squeezed), low = likely; x: (B, D) data; sigma: the noise std, finite,
    > 0; generator: the source of ε (None: torch's global RNG). Returns a scalar.
    """
    x = _check(energy, x, generator)
    check_positive("sigma", sigma)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    with torch.enable_grad():
        _, grad = _energy_gradient(energy, x + sigma * eps)
        return 0.5 * (sigma * grad - eps).pow(2).sum(1).mean()
