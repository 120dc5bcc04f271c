"""The free energy: an energy over latent values collapsed to one number, by min or by marginal.

The library's one convention is the notes' (ch. 16 and eq. 20.7, LeCun et al. 2006): at inverse
temperature β the free energy of energies E(z) over Nz latent values is

    F_β = −(1/β) · log Σ_z exp(−β E(z))                       (``average=False``, the default)

the negative log of the Gibbs partition sum (for a continuous z the sum is the integral). It is
what a Gaussian mixture's energy is: −log p(y) = F_1 of E(y, k) = −log π_k − log N(y; μ_k, Σ_k).
F_β ≤ min E and F_β → min E as β → ∞; F_∞ = min_z E(z) is the zero-temperature limit.

Where the Nz values are a quadrature grid of a continuous latent (``LatentEnergy``'s z_grid), the
sum depends on the grid size; the second form averages instead, i.e. a uniform prior 1/Nz:

    F_β^avg = −(1/β) · log( (1/Nz) Σ_z exp(−β E(z)) ) = F_β + log(Nz)/β     (``average=True``)

which does not drift with Nz and lies between the min and the mean: min ≤ F_β^avg ≤ mean,
decreasing from the mean of E (β → 0) to the min (β → ∞). Both forms have the same gradient
(the Gibbs weights softmin(βE)) and the same β = ∞ limit, the min.

Limits are exact: all energies +inf gives +inf, any −inf gives −inf, NaN propagates.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_int, check_positive

__all__ = ["free_energy"]


def free_energy(
    E: Tensor, beta: float = math.inf, dim: int = -1, *, average: bool = False
) -> Tensor:
    """Collapse energies over a set of latent values. Low = good.

    E: (..., Nz, ...) energies of the Nz latent values along ``dim`` (a tensor or array-like;
    integer values are promoted to float). beta > 0, ``math.inf`` for the zero-temperature limit
    (the min). average: False for −(1/β) log Σ exp(−βE) (the library's convention), True for
    −(1/β) log mean exp(−βE) (a uniform prior over the Nz values); see the module docstring.
    Returns E with ``dim`` removed.

    No value checks and no host syncs (used in forward passes): NaN propagates. Computed with the
    min m = min E (held constant: F is shift-equivariant) factored out, as
    m − (1/β) · log Σ exp(−β(E − m)) or m − (1/β) · log1p(mean(expm1(−β(E − m)))), exact both for
    large β (no overflow) and, for the average, small β (no cancellation against log Nz). A slice
    whose min is infinite gets that min, so the limits +inf (all +inf) and −inf (any −inf) are
    exact (selected with torch.where, no host sync), and its gradient is zero. Gradients w.r.t. E
    are the Gibbs weights softmin(βE), finite wherever F is (+inf energies get weight 0), or the
    one-hot of the argmin at β = ∞.

    >>> import math, torch
    >>> E = torch.tensor([[0.0, 0.0], [1.0, 5.0]])  # (B=2, Nz=2)
    >>> free_energy(E)  # β = ∞: the min
    tensor([0., 1.])
    >>> torch.allclose(free_energy(E, beta=1.0)[0], torch.tensor(-math.log(2)))  # −log(e⁰ + e⁰)
    True
    """
    E = as_float_tensor("E", E, finite=False)
    check_positive("beta", beta, allow_inf=True)
    if not isinstance(average, bool):
        raise ValueError(f"average must be a bool, got {average!r}")
    if E.ndim == 0:
        raise ValueError("E must have at least one dimension (the latent values), got a scalar")
    dim = check_int("dim", dim, minimum=-E.ndim, maximum=E.ndim - 1)
    if E.shape[dim] == 0:
        raise ValueError(f"E has no latent values along dim {dim}: shape {tuple(E.shape)}")
    return _free_energy(E, float(beta), dim, average)


def _representable_beta(beta: float, dtype: torch.dtype) -> float:
    """A finite ``beta`` > 0 clamped to the positive normal range of ``dtype``: torch would turn a
    larger one into inf (and inf · 0 into NaN) or a smaller one into 0 when it meets a tensor of
    that dtype. inf stays inf."""
    if math.isinf(beta):
        return beta
    info = torch.finfo(dtype)
    return min(max(beta, info.tiny), info.max)


def _free_energy(E: Tensor, beta: float, dim: int, average: bool = False) -> Tensor:
    """``free_energy`` without its checks (E a floating tensor, beta a float > 0 or inf): for
    callers that validated their own inputs, e.g. ``soft_dtw``'s soft-min in its inner loop."""
    if math.isinf(beta):
        return E.amin(dim)
    beta = _representable_beta(beta, E.dtype)
    m = E.detach().amin(dim, keepdim=True)
    # an infinite min is the answer itself (+inf: every energy is +inf; −inf: one is); those
    # slices are computed on zeros and replaced, so no inf − inf reaches the value or gradient
    infinite = torch.isinf(m)
    zero = torch.zeros((), dtype=E.dtype, device=E.device)
    finite_E = torch.where(infinite, zero, E)
    finite_m = torch.where(infinite, zero, m)
    scaled = -beta * (finite_E - finite_m)
    if average:
        log_partition = torch.log1p(torch.expm1(scaled).mean(dim, keepdim=True))
    else:
        log_partition = torch.log(torch.exp(scaled).sum(dim, keepdim=True))
    return torch.where(infinite, m, finite_m - log_partition / beta).squeeze(dim)
