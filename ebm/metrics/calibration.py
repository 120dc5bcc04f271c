"""Adaptive (equal-mass) expected calibration error of a classifier's top-class probability."""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_int
from ebm.metrics.uncertainty import _check_classification

__all__ = ["adaptive_ece"]


def adaptive_ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """ECE over bins of EQUAL COUNT: Σ_b (n_b / N) |accuracy_b − confidence_b| (AdaECE, Mukhoti
    et al. 2020; the top-label form of Nixon et al. 2019's adaptive calibration error).

    probs: (N, C) predicted class probabilities (rows in [0, 1] summing to 1); labels: (N,)
    integer class indices in [0, C). n_bins: an int >= 1. The N points, sorted by top-class
    probability (stably: ties keep their input order), are cut into ``n_bins`` runs of
    consecutive points whose sizes differ by at most one, the larger first (numpy's
    ``array_split``); with n_bins > N the extra bins are empty and add nothing. Unlike
    ``expected_calibration_error``'s equal-width bins, no bin is nearly empty when the
    confidences crowd near 1. n_bins = 1 gives |accuracy − mean confidence|; n_bins >= N the
    mean of |1[correct] − confidence|. Returns a 0-dim tensor in [0, 1]; lower is better.

    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    >>> adaptive_ece(probs, torch.tensor([0, 1, 1, 1]), n_bins=2)  # (|1 − .65| + |.5 − .85|)/2
    tensor(0.3500)
    """
    n_bins = check_int("n_bins", n_bins, minimum=1)
    probs, labels = _check_classification(probs, labels)
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).to(probs.dtype)
    n = len(confidence)
    order = confidence.argsort(stable=True)
    small, extra = divmod(n, n_bins)
    sizes = torch.full((n_bins,), small, dtype=torch.long, device=probs.device)
    sizes[:extra] += 1
    bins = torch.repeat_interleave(torch.arange(n_bins, device=probs.device), sizes)
    gap = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device)
    gap.index_add_(0, bins, (correct - confidence)[order])
    return gap.abs().sum() / n
