"""Two-sample distances and mode coverage for judging generated samples.

x: (N, D) and y: (M, D) sample sets on the same device: tensors or array-likes, finite (NaN/inf
raise a ``ValueError``); integer and bool inputs are promoted to the default float dtype, and two
floating dtypes to the wider one. Results are 0-dim tensors that stay on the device until the
caller logs them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_int, check_real

__all__ = ["mmd", "energy_distance", "median_bandwidth", "mode_counts", "mode_coverage"]


def _check_pair(x: object, y: object, names: tuple[str, str] = ("x", "y")) -> tuple[Tensor, Tensor]:
    """Two finite (N, D), (M, D) float tensors with N, M >= 2 and D >= 1, of one dtype."""
    x, y = as_float_tensor(names[0], x, ndim=2), as_float_tensor(names[1], y, ndim=2)
    if x.shape[1] != y.shape[1] or x.shape[1] < 1:
        raise ValueError(
            f"{names[0]} and {names[1]} must share the feature dimension D >= 1, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError(
            f"need at least 2 samples in each set, got {names[0]} {tuple(x.shape)} and "
            f"{names[1]} {tuple(y.shape)}"
        )
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


def median_bandwidth(x: Tensor, y: Tensor) -> Tensor:
    """The median heuristic: the median of the pairwise distances of the pooled samples (the
    lower of the two middle values for an even count, as ``torch.median``).

    x: (N, D), y: (M, D), N, M >= 2. A median of 0 (more than half the pooled points coincide)
    raises a ``ValueError``: no RBF bandwidth can be read from it.
    """
    x, y = _check_pair(x, y)
    return _median_bandwidth(x, y)


def _median_bandwidth(x: Tensor, y: Tensor) -> Tensor:
    z = torch.cat([x, y])
    d = torch.cdist(z, z)
    h = d[torch.triu_indices(len(z), len(z), offset=1, device=z.device).unbind()].median()
    if not bool(h > 0):
        raise ValueError(
            "the median heuristic gives bandwidth 0 (more than half of the pooled points in x "
            "and y coincide): pass bandwidth > 0"
        )
    return h


def mmd(x: Tensor, y: Tensor, bandwidth: float | Tensor | None = None) -> Tensor:
    """Unbiased squared maximum mean discrepancy with the RBF kernel exp(−‖a − b‖² / (2h²)).

    x: (N, D), y: (M, D), N, M >= 2. bandwidth h > 0 (finite); None uses the median heuristic on
    the pooled samples. The unbiased estimate drops the diagonal terms, so it can be slightly
    negative when x and y share a distribution.
    """
    if bandwidth is not None:
        check_real("bandwidth", bandwidth, 0.0, low_inclusive=False)
    x, y = _check_pair(x, y)
    if bandwidth is None:
        h = _median_bandwidth(x, y)
    else:
        h = torch.as_tensor(bandwidth, dtype=x.dtype, device=x.device)
    gamma = 1.0 / (2 * h**2)
    n, m = len(x), len(y)
    kxx = torch.exp(-gamma * torch.cdist(x, x).pow(2))
    kyy = torch.exp(-gamma * torch.cdist(y, y).pow(2))
    kxy = torch.exp(-gamma * torch.cdist(x, y).pow(2))
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return xx + yy - 2 * kxy.mean()


def energy_distance(x: Tensor, y: Tensor) -> Tensor:
    """Székely's energy distance D² = 2·E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (V-statistic, ≥ 0).

    x: (N, D), y: (M, D), N, M >= 2. This is the squared form: ``scipy.stats.energy_distance``
    (1-D) returns its square root.

    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0]])
    >>> energy_distance(x, x)  # one distribution: 0
    tensor(0.)
    >>> energy_distance(x, x + 10.0)  # 2·10 − ½ − ½
    tensor(19.)
    """
    x, y = _check_pair(x, y)
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def mode_counts(samples: Tensor, centers: Tensor, std: float) -> Tensor:
    """High-quality samples per mode, as in the VEEGAN paper: (K,) integer counts.

    A sample is high quality when it lies within 3·std of its nearest centre, and counts for that
    centre. samples: (N, D), N >= 1; centers: (K, D), K >= 1; std: finite, > 0.
    ``mode_coverage`` summarises these counts.
    """
    check_real("std", std, 0.0, low_inclusive=False)
    samples = as_float_tensor("samples", samples, ndim=2)
    centers = as_float_tensor("centers", centers, ndim=2)
    if samples.shape[1] != centers.shape[1] or samples.shape[1] < 1:
        raise ValueError(
            "samples and centers must share the dimension D >= 1, got "
            f"{tuple(samples.shape)} and {tuple(centers.shape)}"
        )
    if len(samples) == 0 or len(centers) == 0:
        raise ValueError(
            f"samples and centers must be non-empty, got {tuple(samples.shape)} and "
            f"{tuple(centers.shape)}"
        )
    dtype = torch.promote_types(samples.dtype, centers.dtype)
    samples = samples.to(dtype)
    dist, nearest = torch.cdist(samples, centers.to(samples)).min(dim=1)
    return torch.bincount(nearest[dist <= 3 * std], minlength=len(centers))


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, min_count: int = 3
) -> tuple[int, float]:
    """(modes covered, fraction of high-quality samples), as in the VEEGAN paper.

    A sample is high quality when it lies within 3·std of its nearest centre; a mode is covered
    when at least ``min_count`` (an int >= 1) high-quality samples are assigned to it
    (``mode_counts``). samples: (N, D), N >= 1; centers: (K, D), K >= 1; std: finite, > 0.

    >>> import torch
    >>> centers = torch.tensor([[0.0, 0.0], [5.0, 0.0]])
    >>> samples = torch.tensor([[0.1, 0.0], [0.0, 0.1], [-0.1, 0.0], [9.0, 9.0]])
    >>> mode_coverage(samples, centers, std=0.1)  # mode 0 covered; 3 of 4 samples near a mode
    (1, 0.75)
    """
    min_count = check_int("min_count", min_count, minimum=1)
    counts = mode_counts(samples, centers, std)
    return int((counts >= min_count).sum()), float(counts.sum() / len(samples))
