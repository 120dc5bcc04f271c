"""Scores for predictive distributions: proper scoring rules (Gaussian NLL, CRPS), interval
coverage and calibration for regression, ECE and Brier score for classification, and the AUROC of
an uncertainty score for out-of-distribution detection. Lower is better for NLL, CRPS, ECE, Brier.

Regression scores take the observations ``y`` first, then the predictive mean and VARIANCE
(the fields of ``ebm.bayes.Prediction``), all of one shape (B, ...).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_choice, check_same_shape, check_tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: Tensor, reduction: str) -> Tensor:
    check_choice("reduction", reduction, _REDUCTIONS)
    if reduction == "mean":
        return values.mean()
    return values.sum() if reduction == "sum" else values


def _check_gaussian(y: Tensor, mean: Tensor, var: Tensor) -> None:
    for name, t in (("y", y), ("mean", mean), ("var", var)):
        check_tensor(name, t)
    check_same_shape(y=y, mean=mean, var=var)
    if y.numel() == 0:
        raise ValueError("y must not be empty")
    if not bool((var > 0).all()):
        raise ValueError("var must be > 0 everywhere (a predictive variance)")


def gaussian_nll(y: Tensor, mean: Tensor, var: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log density of y under N(mean, var): ½ log(2π var) + (y − mean)² / (2 var)."""
    _check_gaussian(y, mean, var)
    nll = 0.5 * (math.log(2 * math.pi) + var.log() + (y - mean) ** 2 / var)
    return _reduce(nll, reduction)


def crps_gaussian(y: Tensor, mean: Tensor, var: Tensor, reduction: str = "mean") -> Tensor:
    """Closed-form CRPS of N(mean, var) at y (Gneiting & Raftery 2007):
    σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − mean)/σ. Same units as y; 0 is perfect."""
    _check_gaussian(y, mean, var)
    std = var.sqrt()
    z = (y - mean) / std
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    crps = std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return _reduce(crps, reduction)


def crps_samples(y: Tensor, samples: Tensor, reduction: str = "mean") -> Tensor:
    """CRPS of the empirical distribution of samples (T, B, ...) at y (B, ...):
    E|X − y| − ½ E|X − X'|, both over the T samples (O(T log T) via sorting).
    Tends to ``crps_gaussian`` as T grows when the samples are Gaussian."""
    check_tensor("y", y)
    check_tensor("samples", samples)
    if samples.ndim != y.ndim + 1 or samples.shape[1:] != y.shape or samples.shape[0] < 1:
        raise ValueError(
            f"samples must have shape (T, *{tuple(y.shape)}), got {tuple(samples.shape)}"
        )
    n = samples.shape[0]
    spread = (samples - y).abs().mean(0)
    ordered = samples.sort(0).values
    weights = 2 * torch.arange(1, n + 1, device=y.device, dtype=samples.dtype) - n - 1
    weights = weights.view(n, *([1] * y.ndim))
    half_pair = (weights * ordered).sum(0) / n**2  # ½ E|X − X'| = Σ (2i − T − 1) x_(i) / T²
    return _reduce(spread - half_pair, reduction)


def _normal_quantile(p: Tensor) -> Tensor:
    return math.sqrt(2.0) * torch.special.erfinv(2 * p - 1)


def interval_coverage(y: Tensor, mean: Tensor, var: Tensor, level: float = 0.95) -> Tensor:
    """Fraction of y inside the central Gaussian interval of probability ``level`` (scalar).
    Calibrated predictions give ≈ level."""
    _check_gaussian(y, mean, var)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    z = _normal_quantile(torch.tensor(0.5 + level / 2, dtype=torch.float64)).item()
    return ((y - mean).abs() <= z * var.sqrt()).float().mean()


def calibration_curve(
    y: Tensor, mean: Tensor, var: Tensor, levels: Tensor | int = 19
) -> tuple[Tensor, Tensor]:
    """Observed coverage of central Gaussian intervals against their nominal levels.

    levels: (L,) nominal levels in (0, 1), or a count L for an even grid (1..L)/(L+1).
    Returns (levels (L,), observed (L,)); a calibrated model lies on the diagonal.
    """
    _check_gaussian(y, mean, var)
    if isinstance(levels, int):
        if levels < 1:
            raise ValueError(f"levels must be a positive count or a tensor, got {levels!r}")
        levels = torch.arange(1, levels + 1, dtype=torch.float64) / (levels + 1)
    levels = check_tensor("levels", levels, ndim=1).to(torch.float64)
    if not bool(((levels > 0) & (levels < 1)).all()):
        raise ValueError("levels must lie in (0, 1)")
    z = _normal_quantile(0.5 + levels / 2).to(device=y.device, dtype=y.dtype)  # (L,)
    standardised = ((y - mean).abs() / var.sqrt()).flatten()  # (N,)
    observed = (standardised[None, :] <= z[:, None]).float().mean(1)
    return levels.to(y.dtype), observed


def _check_classification(probs: Tensor, labels: Tensor) -> None:
    check_tensor("probs", probs, ndim=2)
    check_tensor("labels", labels, ndim=1)
    if labels.shape[0] != probs.shape[0] or probs.shape[0] == 0:
        raise ValueError(
            f"probs (B, C) and labels (B,) must agree on B >= 1, got {tuple(probs.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or bool(
        (labels < 0).any() | (labels >= probs.shape[1]).any()
    ):
        raise ValueError(f"labels must be integers in [0, {probs.shape[1]}), got {labels}")


def brier_score(probs: Tensor, labels: Tensor) -> Tensor:
    """Multi-class Brier score: mean over points of Σ_c (p_c − 1[y = c])², in [0, 2]."""
    _check_classification(probs, labels)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(1).mean()


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """ECE: Σ_b (n_b / N) |accuracy_b − confidence_b| over ``n_bins`` equal-width bins of the
    top-class probability (bins (k/n, (k+1)/n], the first one closed at 0)."""
    _check_classification(probs, labels)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).to(probs.dtype)
    bins = (confidence * n_bins).ceil().long().clamp(1, n_bins) - 1  # (B,) in [0, n_bins)
    count = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device)
    count.index_add_(0, bins, torch.ones_like(confidence))
    gap = torch.zeros_like(count).index_add_(0, bins, correct - confidence)
    return gap.abs().sum() / probs.shape[0]


def ood_auroc(scores_in: Tensor, scores_out: Tensor) -> Tensor:
    """Area under the ROC curve of an uncertainty score separating out-of-distribution inputs
    (``scores_out`` (M,), positives) from in-distribution ones (``scores_in`` (N,)): the
    probability that an OOD point scores higher, ties counting ½ (Mann–Whitney U / (N M))."""
    check_tensor("scores_in", scores_in, ndim=1)
    check_tensor("scores_out", scores_out, ndim=1)
    if len(scores_in) == 0 or len(scores_out) == 0:
        raise ValueError("scores_in and scores_out must both be non-empty")
    scores = torch.cat([scores_in, scores_out]).to(torch.float64)
    ranks = _average_ranks(scores)
    n_in, n_out = len(scores_in), len(scores_out)
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2
    return (u / (n_in * n_out)).to(scores_in.dtype)


def _average_ranks(values: Tensor) -> Tensor:
    """1-based ranks, ties sharing their average rank."""
    order = values.argsort()
    sorted_values = values[order]
    _, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).to(values.dtype)
    average = ends - (counts.to(values.dtype) - 1) / 2  # mean of ranks end-count+1 .. end
    ranks = torch.empty_like(values)
    ranks[order] = average[inverse]
    return ranks
