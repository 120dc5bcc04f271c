"""What the closed-form estimators (PCA, KMeans, GaussianMixture) share: input checks, the
not-fitted error, moving queries onto the fitted model's device and dtype, and an exact rescaling
that keeps their arithmetic in range whatever the data's magnitude."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_finite, check_int, check_nonempty


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute (ending in ``_``) was needed before ``fit`` was called."""


def _check_finite_fast(name: str, Y: Tensor) -> None:
    """check_finite, reading one number when Y is finite: the sum is non-finite whenever an
    entry is NaN or ±inf and costs a fraction of isfinite().all(); only if it is non-finite (a
    NaN/inf, or an overflow of finite values) does the exact check decide."""
    if Y.numel() and not torch.isfinite(Y.sum()):
        check_finite(name, Y)


def check_data(name: str, Y: object, min_samples: int = 1, what: str = "") -> Tensor:
    """Require finite (N, D) data with N >= ``min_samples``: a tensor or array-like, integer and
    bool values promoted to the default float dtype, floating tensors kept as they are.

    ``what`` names the reason for the minimum in the message, e.g. "n_clusters=8".
    """
    Y = as_float_tensor(name, Y, ndim=2, finite=False)
    if Y.shape[0] < min_samples or Y.shape[1] < 1:
        reason = f" (needed by {what})" if what else ""
        raise ValueError(
            f"{name} must have shape (N, D) with N >= {min_samples}{reason} and D >= 1, "
            f"got {tuple(Y.shape)}"
        )
    _check_finite_fast(name, Y)
    return Y


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Require an int >= ``minimum`` (bools are rejected); see ``ebm._checks.check_int``."""
    return check_int(name, value, minimum=minimum)


def check_fitted(estimator: object, attribute: str) -> Tensor:
    """Return the fitted ``attribute`` or raise NotFittedError naming the estimator."""
    value = getattr(estimator, attribute, None)
    if value is None:
        name = type(estimator).__name__
        raise NotFittedError(f"this {name} is not fitted yet: call {name}.fit(Y) first")
    return value


def as_query(name: str, Y: object, reference: Tensor) -> Tensor:
    """Validate a query batch (B, D) against a fitted tensor ``reference`` (..., D) and move it to
    the reference's device and dtype, so a model fitted on one device answers queries from any.

    Y: a tensor or array-like with B >= 1 rows (an empty batch is refused, as in scikit-learn);
    it must be finite (a NaN row has no answer: ValueError naming ``name``), and stay finite in
    the fitted dtype (float64 values beyond float32's range are refused rather than turned into
    inf).
    """
    Y = check_nonempty(name, as_float_tensor(name, Y, ndim=2, finite=False))
    if Y.shape[1] != reference.shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, {reference.shape[-1]}) like the data seen in fit, "
            f"got {tuple(Y.shape)}"
        )
    _check_finite_fast(name, Y)
    moved = Y.to(device=reference.device, dtype=reference.dtype)
    if moved.dtype != Y.dtype and moved.numel() and not torch.isfinite(moved.sum()):
        if not torch.isfinite(moved).all():
            raise ValueError(
                f"{name} holds values beyond the range of the fitted dtype {reference.dtype} "
                f"(largest |value| {float(Y.abs().max()):.3g}): rescale it or fit in float64"
            )
    return moved


def power_of_two_scale(X: Tensor) -> float:
    """A power of two s with max|X| / s in [0.5, 1): dividing by s is exact (no rounding), so an
    estimator can work at unit scale, where squares neither overflow (data at 1e30) nor
    underflow (data at 1e-30), and scale its results back exactly. s and 1/s are normal numbers
    of X's dtype (clamped at its extremes); 1 for all-zero X."""
    peak = float(X.abs().amax()) if X.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return 1.0
    finfo = torch.finfo(X.dtype)
    low, high = math.frexp(finfo.tiny)[1] + 1, math.frexp(finfo.max)[1] - 2
    return math.ldexp(1.0, min(max(math.frexp(peak)[1], low), high))
