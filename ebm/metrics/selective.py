"""Selective classification: how well a confidence score ranks a classifier's errors last.

The risk-coverage curve (Geifman & El-Yaniv 2017) keeps the k most confident of N predictions,
k = 1..N, and plots the error rate among them against the coverage k / N; its area (AURC,
Geifman, Uziel & El-Yaniv 2019) is small when errors get low confidence. Lower is better.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_nonempty

__all__ = ["aurc"]


def aurc(confidence: Tensor, correct: Tensor) -> Tensor:
    """Area under the risk-coverage curve, (1/N) Σ_k (errors among the k most confident) / k.

    confidence: (N,) any finite score, higher = more confident (the top-class probability, or
        minus an uncertainty).
    correct: (N,) whether each prediction is right: bools, or numbers 0/1.
    Ties in confidence cannot be separated by a threshold: the errors of a tied group count as
    spread evenly through it (the average over the orders of the tie), so the result never
    depends on the input order. Returns a 0-dim tensor in [0, 1] (the promoted floating dtype):
    0 when every prediction is right, 1 when every one is wrong, the error rate r when every
    confidence is equal, and at best Σ_{k > N(1−r)} (k − N(1−r)) / (kN) ≈ r + (1 − r) ln(1 − r)
    (every error least confident).

    >>> import torch
    >>> aurc(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([True, False, True, True]))
    tensor(0.2708)
    """
    conf = check_nonempty("confidence", as_float_tensor("confidence", confidence, ndim=1))
    right = as_float_tensor("correct", correct, ndim=1)
    if right.shape != conf.shape:
        raise ValueError(
            f"correct must have the shape of confidence {tuple(conf.shape)}, got "
            f"{tuple(right.shape)}"
        )
    if not bool(((right == 0) | (right == 1)).all()):
        raise ValueError("correct must hold bools or 0/1 values, got other numbers")
    dtype = torch.promote_types(conf.dtype, right.dtype)
    conf64 = conf.to(torch.float64)
    errors = 1 - right.to(device=conf.device, dtype=torch.float64)
    order = conf64.argsort(descending=True, stable=True)
    conf64, errors = conf64[order], errors[order]
    _, counts = torch.unique_consecutive(conf64, return_counts=True)  # tie groups
    group = torch.repeat_interleave(torch.arange(len(counts), device=conf.device), counts)
    ends = errors.cumsum(0)[counts.cumsum(0) - 1]  # errors up to each group's end
    group_errors = torch.zeros(len(counts), dtype=torch.float64, device=conf.device)
    group_errors.index_add_(0, group, errors)
    start = (counts.cumsum(0) - counts).to(torch.float64)  # points before each group
    k = torch.arange(1, len(conf64) + 1, dtype=torch.float64, device=conf.device)
    rate = group_errors / counts.to(torch.float64)
    expected = (ends - group_errors)[group] + (k - start[group]) * rate[group]
    return (expected / k).mean().to(dtype)
