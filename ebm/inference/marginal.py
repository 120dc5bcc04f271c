"""The free energy: an energy over latent values collapsed to one number, by min or by marginal.

F_∞ = min_z E(z) (zero temperature) and, at inverse temperature β,
F_β = −(1/β) · log( (1/N) Σ_z exp(−β E(z)) ),
the negative log of the Gibbs marginal under a uniform prior over the N latent values. F_β
decreases from the mean of E (β → 0) to the min (β → ∞), and min ≤ F_β ≤ mean for every β.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_positive, check_tensor


def free_energy(E: Tensor, beta: float = math.inf, dim: int = -1) -> Tensor:
    """Collapse energies over a set of latent values. Low = good.

    E: (..., Nz, ...) energies of the Nz latent values along ``dim``; beta > 0, ``math.inf`` for
    the zero-temperature limit (the min). Returns E with ``dim`` removed.

    Computed as m − (1/β) · log1p(mean(expm1(−β (E − m)))) with m = min E (held constant: F is
    shift-equivariant), which stays exact both for large β (no overflow) and for small β (no
    cancellation against log Nz). Gradients w.r.t. E are the Gibbs weights softmin(βE), or the
    one-hot of the argmin at β = ∞.
    """
    check_tensor("E", E)
    check_positive("beta", beta, allow_inf=True)
    if E.ndim == 0:
        raise ValueError("E must have at least one dimension (the latent values), got a scalar")
    if not -E.ndim <= dim < E.ndim:
        raise ValueError(f"dim must index one of E's {E.ndim} dimensions, got {dim}")
    if E.shape[dim] == 0:
        raise ValueError(f"E has no latent values along dim {dim}: shape {tuple(E.shape)}")
    if math.isinf(beta):
        return E.amin(dim)
    m = E.detach().amin(dim, keepdim=True)
    mean_expm1 = torch.expm1(-beta * (E - m)).mean(dim, keepdim=True)
    return (m - torch.log1p(mean_expm1) / beta).squeeze(dim)
