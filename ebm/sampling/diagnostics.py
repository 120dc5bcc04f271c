"""MCMC diagnostics: effective sample size per dimension.

The ESS follows Geyer's initial monotone sequence estimator in its multi-chain form (as in Stan's
reference manual): within-chain autocovariances from the FFT, combined with the between-chain
variance, summed in pairs until a pair turns negative, the pair sums forced non-increasing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_float_tensor

__all__ = ["effective_sample_size"]


def _autocovariance(x: Tensor) -> Tensor:
    """Biased autocovariance along dim 0 of x (N, ...) via the FFT. Returns (N, ...)."""
    n = x.shape[0]
    centred = x - x.mean(0, keepdim=True)
    size = 2 * n  # zero padding: a linear, not circular, correlation
    f = torch.fft.rfft(centred, n=size, dim=0)
    acov = torch.fft.irfft(f * f.conj(), n=size, dim=0)[:n]
    return acov / n


def effective_sample_size(samples: Tensor) -> Tensor:
    """ESS of each coordinate from ``samples`` (n_steps, n_chains, ...). Returns (...).

    For independent draws it is about n_steps·n_chains; for an AR(1) chain with coefficient ρ it
    tends to n_steps·n_chains·(1 − ρ)/(1 + ρ). Needs n_steps >= 4 and n_chains >= 1.

    samples: a tensor or an array-like, finite (NaN/inf raise a ``ValueError``: one host sync,
    so call it on a finished run, not inside the sampling loop). Computed in float64; the result
    has the samples' floating dtype, or the default float dtype for integer and bool samples
    (never truncated). A coordinate that never moves (zero variance) has ESS NaN.
    """
    samples = as_float_tensor("samples", samples)
    if samples.ndim < 2 or samples.shape[0] < 4 or samples.shape[1] < 1:
        raise ValueError(
            "samples must have shape (n_steps >= 4, n_chains >= 1, ...), got "
            f"{tuple(samples.shape)}"
        )
    x = samples.to(torch.float64)
    n, m = x.shape[0], x.shape[1]
    acov = _autocovariance(x)  # (N, M, ...)
    within = x.var(dim=0).mean(dim=0)  # W: mean within-chain variance, (...)
    between = x.mean(dim=0).var(dim=0) if m > 1 else torch.zeros_like(within)  # B/N
    var_plus = (n - 1) / n * within + between
    rho = 1.0 - (within - acov.mean(dim=1)) / var_plus  # (N, ...)
    n_pairs = n // 2
    pairs = rho[: 2 * n_pairs : 2] + rho[1 : 2 * n_pairs : 2]  # Geyer's pair sums P_k
    # initial positive sequence: zero from the first negative pair on; then monotone
    pairs = pairs.clamp(min=0).cummin(dim=0).values
    tau = -1.0 + 2.0 * pairs.sum(dim=0)
    return (n * m / tau).to(samples.dtype)
