"""What the closed-form estimators (PCA, KMeans, GaussianMixture) share: input checks, the
not-fitted error, and moving queries onto the fitted model's device and dtype."""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_finite, check_int, check_tensor


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute (ending in ``_``) was needed before ``fit`` was called."""


def check_data(name: str, Y: object, min_samples: int = 1, what: str = "") -> Tensor:
    """Require a finite floating (N, D) tensor with N >= ``min_samples``.

    ``what`` names the reason for the minimum in the message, e.g. "n_clusters=8".
    """
    Y = check_tensor(name, Y, ndim=2)
    if not Y.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {Y.dtype}")
    if Y.shape[0] < min_samples or Y.shape[1] < 1:
        reason = f" (needed by {what})" if what else ""
        raise ValueError(
            f"{name} must have shape (N, D) with N >= {min_samples}{reason} and D >= 1, "
            f"got {tuple(Y.shape)}"
        )
    # The sum is non-finite whenever an entry is NaN or ±inf, and costs a fraction of
    # isfinite().all() on large inputs; only if it is non-finite (a NaN/inf, or an overflow of
    # finite values) does the exact check decide.
    if not torch.isfinite(Y.sum()):
        check_finite(name, Y)
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
    the reference's device and dtype, so a model fitted on one device answers queries from any."""
    Y = check_tensor(name, Y, ndim=2)
    if Y.shape[1] != reference.shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, {reference.shape[-1]}) like the data seen in fit, "
            f"got {tuple(Y.shape)}"
        )
    if not (Y.is_floating_point() or Y.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got dtype {Y.dtype}")
    return Y.to(device=reference.device, dtype=reference.dtype)
