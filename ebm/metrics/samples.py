"""Two-sample distances and mode coverage for judging generated samples.

x: (N, D) and y: (M, D) sample sets on the same device. Results are 0-dim tensors that stay on
the device until the caller logs them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_positive, check_tensor


def _check_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    check_tensor("x", x, ndim=2), check_tensor("y", y, ndim=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must share the feature dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least 2 samples in each set, got {len(x)} and {len(y)}")
    return x, y


def median_bandwidth(x: Tensor, y: Tensor) -> Tensor:
    """The median heuristic: the median of the pairwise distances of the pooled samples (the
    lower of the two middle values for an even count, as ``torch.median``)."""
    z = torch.cat([x, y])
    d = torch.cdist(z, z)
    return d[torch.triu_indices(len(z), len(z), offset=1, device=z.device).unbind()].median()


def mmd(x: Tensor, y: Tensor, bandwidth: float | Tensor | None = None) -> Tensor:
    """Unbiased squared maximum mean discrepancy with the RBF kernel exp(−‖a − b‖² / (2h²)).

    bandwidth h: None uses the median heuristic on the pooled samples. The unbiased estimate
    drops the diagonal terms, so it can be slightly negative when x and y share a distribution.
    """
    x, y = _check_pair(x, y)
    if bandwidth is None:
        h = median_bandwidth(x, y)
    else:
        check_positive("bandwidth", float(bandwidth))
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

    This is the squared form: ``scipy.stats.energy_distance`` (1-D) returns its square root.
    """
    x, y = _check_pair(x, y)
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def mode_counts(samples: Tensor, centers: Tensor, std: float) -> Tensor:
    """High-quality samples per mode, as in the VEEGAN paper: (K,) integer counts.

    A sample is high quality when it lies within 3·std of its nearest centre, and counts for that
    centre. samples: (N, D); centers: (K, D). ``mode_coverage`` summarises these counts.
    """
    check_tensor("samples", samples, ndim=2), check_tensor("centers", centers, ndim=2)
    check_positive("std", std)
    if samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples and centers must share the dimension, got {tuple(samples.shape)} and {tuple(centers.shape)}"
        )
    dist, nearest = torch.cdist(samples, centers.to(samples)).min(dim=1)
    return torch.bincount(nearest[dist <= 3 * std], minlength=len(centers))


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, min_count: int = 3
) -> tuple[int, float]:
    """(modes covered, fraction of high-quality samples), as in the VEEGAN paper.

    A sample is high quality when it lies within 3·std of its nearest centre; a mode is covered
    when at least ``min_count`` high-quality samples are assigned to it (``mode_counts``).
    samples: (N, D); centers: (K, D).
    """
    counts = mode_counts(samples, centers, std)
    return int((counts >= min_count).sum()), float(counts.sum() / len(samples))
