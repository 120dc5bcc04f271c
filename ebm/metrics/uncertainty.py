"""Scores for predictive distributions: proper scoring rules (Gaussian NLL, CRPS), interval
coverage and calibration for regression, ECE and Brier score for classification, and the AUROC of
an uncertainty score for out-of-distribution detection. Lower is better for NLL, CRPS, ECE, Brier.

Regression scores take the observations ``y`` first, then the predictive mean and VARIANCE
(the fields of ``ebm.bayes.Prediction``), all of one shape (B, ...).

Inputs: tensors or array-likes. They must be finite (NaN/inf raise a ``ValueError`` naming the
argument); integer and bool values are promoted to the default float dtype, and mixed floating
dtypes to the widest one, so no score is ever truncated. Class labels are integer (or bool)
indices in [0, C); probabilities lie in [0, 1] and each row sums to 1.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    as_index_tensor,
    check_choice,
    check_int,
    check_real,
    check_same_shape,
)

__all__ = [
    "gaussian_nll",
    "crps_gaussian",
    "crps_samples",
    "interval_coverage",
    "calibration_curve",
    "brier_score",
    "expected_calibration_error",
    "ood_auroc",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    return values.sum() if reduction == "sum" else values


def _common(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors in their promoted floating dtype, on the first one's device."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return tuple(t.to(device=tensors[0].device, dtype=dtype) for t in tensors)


def _check_gaussian(y: object, mean: object, var: object) -> tuple[Tensor, Tensor, Tensor]:
    y, mean, var = (as_float_tensor(n, t) for n, t in (("y", y), ("mean", mean), ("var", var)))
    check_same_shape(y=y, mean=mean, var=var)
    if y.numel() == 0:
        raise ValueError(f"y must not be empty, got shape {tuple(y.shape)}")
    if not bool((var > 0).all()):
        raise ValueError(
            f"var must be > 0 everywhere (a predictive variance), got {int((var <= 0).sum())} "
            f"values <= 0 (min {var.min().item():.3g})"
        )
    return _common(y, mean, var)


def gaussian_nll(y: Tensor, mean: Tensor, var: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log density of y under N(mean, var): ½ log(2π var) + (y − mean)² / (2 var).

    y, mean, var: (B, ...), var > 0. reduction: "mean", "sum" or "none" ((B, ...)).

    >>> import torch
    >>> gaussian_nll(torch.zeros(3), torch.zeros(3), torch.ones(3))  # ½ log 2π
    tensor(0.9189)
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    y, mean, var = _check_gaussian(y, mean, var)
    nll = 0.5 * (math.log(2 * math.pi) + var.log() + (y - mean) ** 2 / var)
    return _reduce(nll, reduction)


def crps_gaussian(y: Tensor, mean: Tensor, var: Tensor, reduction: str = "mean") -> Tensor:
    """Closed-form CRPS of N(mean, var) at y (Gneiting & Raftery 2007):
    σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − mean)/σ. Same units as y; 0 is perfect.

    y, mean, var: (B, ...), var > 0. reduction: "mean", "sum" or "none" ((B, ...))."""
    check_choice("reduction", reduction, _REDUCTIONS)
    y, mean, var = _check_gaussian(y, mean, var)
    std = var.sqrt()
    z = (y - mean) / std
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    crps = std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return _reduce(crps, reduction)


def crps_samples(y: Tensor, samples: Tensor, reduction: str = "mean") -> Tensor:
    """CRPS of the empirical distribution of samples (T, B, ...) at y (B, ...):
    E|X − y| − ½ E|X − X'|, both over the T >= 1 samples (O(T log T) via sorting).
    Tends to ``crps_gaussian`` as T grows when the samples are Gaussian.

    reduction: "mean", "sum" or "none" ((B, ...)).

    >>> import torch
    >>> crps_samples(torch.tensor([0.0]), torch.tensor([[0.0], [0.0]]))  # all samples exact
    tensor(0.)
    >>> crps_samples(torch.tensor([0.0]), torch.tensor([[-1.0], [1.0]]))  # 1 − ½·1
    tensor(0.5000)
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    y = as_float_tensor("y", y)
    samples = as_float_tensor("samples", samples)
    if samples.ndim != y.ndim + 1 or samples.shape[1:] != y.shape or samples.shape[0] < 1:
        raise ValueError(
            f"samples must have shape (T, *y.shape) with T >= 1: y has shape {tuple(y.shape)}, "
            f"samples {tuple(samples.shape)}"
        )
    if y.numel() == 0:
        raise ValueError(f"y must not be empty, got shape {tuple(y.shape)}")
    y, samples = _common(y, samples)
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

    y, mean, var: (B, ...), var > 0; level in (0, 1). Calibrated predictions give ≈ level."""
    check_real("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    y, mean, var = _check_gaussian(y, mean, var)
    z = _normal_quantile(torch.tensor(0.5 + float(level) / 2, dtype=torch.float64)).item()
    return ((y - mean).abs() <= z * var.sqrt()).to(y.dtype).mean()


def calibration_curve(
    y: Tensor, mean: Tensor, var: Tensor, levels: Tensor | int = 19
) -> tuple[Tensor, Tensor]:
    """Observed coverage of central Gaussian intervals against their nominal levels.

    y, mean, var: (B, ...), var > 0.
    levels: (L,) nominal levels in (0, 1) (a tensor or array-like, L >= 1), or a count L >= 1 for
        an even grid (1..L)/(L+1).
    Returns (levels (L,), observed (L,)) in the (promoted floating) dtype of the inputs; a
    calibrated model lies on the diagonal.
    """
    if isinstance(levels, numbers.Integral):  # bools too: check_int refuses them by name
        count = check_int("levels", levels, minimum=1)
        levels = torch.arange(1, count + 1, dtype=torch.float64) / (count + 1)
    else:
        levels = as_float_tensor("levels", levels, ndim=1).to(torch.float64)
        if len(levels) == 0 or not bool(((levels > 0) & (levels < 1)).all()):
            raise ValueError(
                f"levels must be a count >= 1 or a non-empty 1-d array of levels in (0, 1), "
                f"got {levels.tolist()}"
            )
    y, mean, var = _check_gaussian(y, mean, var)
    z = _normal_quantile(0.5 + levels / 2).to(device=y.device, dtype=y.dtype)  # (L,)
    standardised = ((y - mean).abs() / var.sqrt()).flatten()  # (N,)
    observed = (standardised[None, :] <= z[:, None]).to(y.dtype).mean(1)
    return levels.to(device=y.device, dtype=y.dtype), observed


def _check_classification(probs: object, labels: object) -> tuple[Tensor, Tensor]:
    """probs (B, C) rows of probabilities; labels (B,) class indices in [0, C)."""
    probs = as_float_tensor("probs", probs, ndim=2)
    if probs.shape[0] == 0 or probs.shape[1] < 1:
        raise ValueError(f"probs must have shape (B, C) with B, C >= 1, got {tuple(probs.shape)}")
    bad = (probs < 0) | (probs > 1)
    if bool(bad.any()):
        raise ValueError(
            f"probs must be probabilities in [0, 1], got {int(bad.sum())} values outside "
            f"(min {probs.min().item():.6g}, max {probs.max().item():.6g})"
        )
    # the tolerance of scikit-learn's probability checks: √eps of the dtype
    tol = math.sqrt(torch.finfo(probs.dtype).eps)
    error = (probs.sum(1) - 1).abs()
    if bool((error > tol).any()):
        raise ValueError(
            f"probs must have rows summing to 1 (a distribution over the {probs.shape[1]} "
            f"classes, within {tol:.2g}), got {int((error > tol).sum())} rows off by up to "
            f"{error.max().item():.3g}"
        )
    labels = as_index_tensor("labels", labels, ndim=1, high=probs.shape[1], device=probs.device)
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"probs (B, C) and labels (B,) must agree on B, got {tuple(probs.shape)} "
            f"and {tuple(labels.shape)}"
        )
    return probs, labels


def brier_score(probs: Tensor, labels: Tensor) -> Tensor:
    """Multi-class Brier score: mean over points of Σ_c (p_c − 1[y = c])², in [0, 2].

    probs: (B, C) predicted class probabilities (rows in [0, 1] summing to 1); labels: (B,)
    integer class indices in [0, C).

    >>> import torch
    >>> brier_score(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([0, 1]))  # (0 + ½)/2
    tensor(0.2500)
    """
    probs, labels = _check_classification(probs, labels)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(1).mean()


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """ECE: Σ_b (n_b / N) |accuracy_b − confidence_b| over ``n_bins`` (an int >= 1) equal-width
    bins of the top-class probability (bins (k/n, (k+1)/n], the first one closed at 0).

    probs: (B, C) predicted class probabilities (rows in [0, 1] summing to 1); labels: (B,)
    integer class indices in [0, C).
    """
    n_bins = check_int("n_bins", n_bins, minimum=1)
    probs, labels = _check_classification(probs, labels)
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
    probability that an OOD point scores higher, ties counting ½ (Mann–Whitney U / (N M)).

    Both finite and non-empty; the result has their promoted floating dtype (integer scores are
    ranked exactly and never truncate it).

    >>> import torch
    >>> ood_auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.9, 0.2]))  # 3 wins, 1 tie of 4
    tensor(0.8750)
    """
    ranked = []
    dtype = None
    for name, value in (("scores_in", scores_in), ("scores_out", scores_out)):
        t = as_float_tensor(name, value, ndim=1)
        if len(t) == 0:
            raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
        dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        # ranked in float64 straight from the input: integers up to 2⁵³ stay exact
        exact = as_float_tensor(name, value, dtype=torch.float64, finite=False)
        ranked.append(exact.to(ranked[0].device) if ranked else exact)
    scores = torch.cat(ranked)
    ranks = _average_ranks(scores)
    n_in, n_out = len(ranked[0]), len(ranked[1])
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2
    return (u / (n_in * n_out)).to(dtype)


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
