"""Out-of-distribution detection at a fixed detection rate: the false-positive rate at 95 % true
positives (FPR95, Hendrycks & Gimpel 2017; Liang et al. 2018). Lower is better."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_nonempty, check_real

__all__ = ["fpr_at_tpr"]


def fpr_at_tpr(scores_in: Tensor, scores_out: Tensor, tpr: float = 0.95) -> Tensor:
    """Fraction of in-distribution points flagged when a threshold flags ``tpr`` of the OOD ones.

    scores_in: (N,) uncertainty scores of in-distribution points; scores_out: (M,) of
    out-of-distribution points (the positives; higher = more likely OOD, as for ``ood_auroc``);
    both finite and non-empty. tpr: the target true-positive rate, in (0, 1].
    The rule "OOD when score >= t" is run at the largest t that flags at least ⌈tpr·M⌉ OOD points
    (the ⌈tpr·M⌉-th largest OOD score): the smallest false-positive rate among thresholds that
    reach the target, as read off scikit-learn's ``roc_curve`` at the first TPR >= tpr.
    Returns a 0-dim tensor in [0, 1] (the promoted floating dtype). For a confidence (higher =
    in-distribution), pass its negative.

    >>> import torch
    >>> fpr_at_tpr(torch.tensor([0.1, 0.5, 0.9, 0.2]), torch.tensor([0.4, 0.8]), tpr=1.0)
    tensor(0.5000)
    """
    check_real("tpr", tpr, 0.0, 1.0, low_inclusive=False)
    dtype = None
    exact = []
    for name, value in (("scores_in", scores_in), ("scores_out", scores_out)):
        t = check_nonempty(name, as_float_tensor(name, value, ndim=1))
        dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        # compared in float64 straight from the input: integer scores stay exact
        t64 = as_float_tensor(name, value, dtype=torch.float64, finite=False)
        exact.append(t64.to(exact[0].device) if exact else t64)
    s_in, s_out = exact
    m = len(s_out)
    rank = min(m, math.ceil(Fraction(repr(float(tpr))) * m))  # OOD points to flag
    threshold = s_out.sort(descending=True).values[rank - 1]
    return (s_in >= threshold).to(torch.float64).mean().to(dtype)
