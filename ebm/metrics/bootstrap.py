"""Percentile bootstrap intervals for any statistic of paired samples (Efron & Tibshirani 1993).

A metric measured on a few hundred test points (an ECE, an AUROC, a difference of two models'
scores on the same points) has a sampling error of the same size as the differences one wants
to claim. ``bootstrap_interval`` resamples the points with replacement, recomputes the statistic
and reads the interval off the percentiles of the replicates.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ebm._checks import _from_array_like, check_generator, check_int, check_real

__all__ = ["BootstrapInterval", "bootstrap_interval"]


class BootstrapInterval(NamedTuple):
    """``estimate``: the statistic on the data as given; ``low``, ``high``: the percentile
    interval's ends; ``replicates``: (n_bootstrap,) the statistic on each resample. All float64."""

    estimate: Tensor
    low: Tensor
    high: Tensor
    replicates: Tensor

    def __repr__(self) -> str:  # the replicates summarised: printing 1000 of them helps no one
        return (
            f"BootstrapInterval(estimate={float(self.estimate):.6g}, low={float(self.low):.6g}, "
            f"high={float(self.high):.6g}, replicates=<{len(self.replicates)} values>)"
        )


def _as_scalar(value: object, where: str) -> Tensor:
    """One real number (a 0-d tensor, a 1-element tensor or a Python/numpy real) as float64."""
    if isinstance(value, Tensor):
        t = value.detach()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = torch.tensor(float(value))
    else:
        raise ValueError(
            f"statistic must return one real number (a 0-d tensor or a float), got "
            f"{type(value).__name__} {where}"
        )
    if t.numel() != 1:
        raise ValueError(
            f"statistic must return one number (a 0-d tensor or a float), got shape "
            f"{tuple(t.shape)} {where}"
        )
    if t.is_complex():
        raise ValueError(f"statistic must return a real number, got dtype {t.dtype} {where}")
    return t.reshape(()).to(torch.float64)


def bootstrap_interval(
    data: Tensor | Sequence[Tensor],
    statistic: Callable[..., Tensor],
    n_bootstrap: int = 1000,
    level: float = 0.95,
    generator: torch.Generator | None = None,
) -> BootstrapInterval:
    """The percentile bootstrap interval of ``statistic(*data)`` (scipy.stats.bootstrap's
    ``method="percentile"`` with ``paired=True``).

    data: a tuple or list of tensors or array-likes, each (N, ...) with the same N >= 1 (row i of
        every one belongs to point i), or one tensor (N, ...), read as ``(data,)``. Rows are
        resampled jointly (a paired bootstrap), so a difference of two models' scores on the same
        test points, ``lambda p, q, y: ece(p, y) − ece(q, y)``, keeps the pairing. Dtypes are
        kept (labels stay integers).
    statistic: a callable taking the tensors of ``data`` (in that order) and returning one number
        (a 0-d tensor or a float), e.g. ``expected_calibration_error``.
    n_bootstrap: the number of resamples, an int >= 1 (Monte-Carlo error of the ends falls as
        1/√n_bootstrap; 1000 is the usual minimum for a 95 % interval, 10 000 for publication).
    level: the interval's coverage, in (0, 1); the ends are the (1 − level)/2 and (1 + level)/2
        quantiles of the replicates (linear interpolation, numpy's default).
    generator: the source of the resampling indices (None: torch's global RNG), on the data's
        device: a seeded generator gives the same interval on every call.

    Returns a ``BootstrapInterval(estimate, low, high, replicates)`` of float64 tensors. The
    percentile interval is first-order accurate: it under-covers for small N and for statistics
    with a large bias (ECE is biased upwards at small N: the interval of a difference of two
    ECEs on the same points is the meaningful one, the biases largely cancel). A replicate that
    is NaN (a statistic undefined on some resample) makes the ends NaN, never a silent subset;
    infinite replicates give infinite ends (never NaN from interpolating between them).

    >>> import torch
    >>> x = torch.randn(200, generator=torch.Generator().manual_seed(0))
    >>> r = bootstrap_interval(x, torch.mean, generator=torch.Generator().manual_seed(1))
    >>> bool(r.low < x.mean() < r.high), r.replicates.shape
    (True, torch.Size([1000]))
    """
    if not callable(statistic):
        raise ValueError(f"statistic must be a callable, got {type(statistic).__name__}")
    if isinstance(data, (Tensor, np.ndarray)):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data:
        raise ValueError(
            f"data must be a tensor (N, ...) or a non-empty tuple of them, got {data!r:.80}"
        )
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, minimum=1)
    level = check_real("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    tensors = []
    for k, value in enumerate(data):
        name = f"data[{k}]"
        t = value if isinstance(value, Tensor) else _from_array_like(name, value, ("numbers",) * 2)
        if t.ndim < 1 or len(t) < 1:
            raise ValueError(
                f"{name} must be (N, ...) with N >= 1, got shape {tuple(t.shape)} (one sample "
                "of numbers is passed as (x,))"
            )
        if tensors and len(t) != len(tensors[0]):
            raise ValueError(
                f"{name} must have as many rows as data[0] (paired points), got {len(t)} and "
                f"{len(tensors[0])}"
            )
        if tensors and t.device != tensors[0].device:
            raise ValueError(f"{name} is on {t.device}, data[0] on {tensors[0].device}")
        tensors.append(t)
    device, n = tensors[0].device, len(tensors[0])
    generator = check_generator("generator", generator, device)

    estimate = _as_scalar(statistic(*tensors), "on the data")
    idx = torch.randint(0, n, (n_bootstrap, n), generator=generator, device=device)
    replicates = torch.stack(
        [_as_scalar(statistic(*(t[i] for t in tensors)), "on a resample") for i in idx]
    ).to(device)
    tail = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64, device=device)
    if torch.isnan(replicates).any():
        low = high = torch.tensor(float("nan"), dtype=torch.float64, device=device)
    else:  # order statistics, interpolated only between finite neighbours (inf − inf is NaN)
        ordered = replicates.sort().values
        position = tail * (n_bootstrap - 1)
        below, above = ordered[position.floor().long()], ordered[position.ceil().long()]
        weight = position - position.floor()
        low, high = torch.where(below == above, below, below + weight * (above - below))
    return BootstrapInterval(estimate.to(device), low, high, replicates)
