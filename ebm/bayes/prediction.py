"""One predictive distribution type shared by every Bayesian predictor in ``ebm.bayes``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_real

__all__ = ["Prediction"]


@dataclass(frozen=True)
class Prediction:
    """A predictive distribution summarised per output element.

    mean: (B, ...) predictive mean.
    var: (B, ...) predictive variance (per element; the diagonal of the covariance), >= 0.
    samples: (T, B, ...) the Monte Carlo samples it came from, or None for closed-form
        predictors (the GP).

    Fields may be given as tensors or array-likes; they are stored as floating tensors (integer
    and bool values promoted to the default float dtype). NaN/inf anywhere, or a negative
    variance, raise a ``ValueError``: a prediction that diverged is reported where it is made.
    """

    mean: Tensor
    var: Tensor
    samples: Tensor | None = None

    def __post_init__(self) -> None:
        mean = as_float_tensor("mean", self.mean)
        var = as_float_tensor("var", self.var)
        if var.shape != mean.shape:
            raise ValueError(
                f"var must have the shape of mean {tuple(mean.shape)}, got {tuple(var.shape)}"
            )
        if bool((var < 0).any()):
            raise ValueError(
                f"var must be >= 0 (a variance), got {int((var < 0).sum())} negative values "
                f"(min {var.min().item():.3g})"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)
        if self.samples is not None:
            samples = as_float_tensor("samples", self.samples)
            if samples.ndim != mean.ndim + 1 or samples.shape[1:] != mean.shape:
                raise ValueError(
                    f"samples must have shape (T, *{tuple(mean.shape)}), got {tuple(samples.shape)}"
                )
            object.__setattr__(self, "samples", samples)

    @classmethod
    def from_samples(cls, samples: Tensor, noise_var: float | Tensor = 0.0) -> Prediction:
        """Mean and variance over the first axis of ``samples`` (T, B, ...), plus ``noise_var``.

        The variance is the population one, (1/T) Σ (y_t − ȳ)², as in Gal & Ghahramani's
        eq. (21.2 in the notes); ``noise_var`` is the aleatoric part (τ⁻¹ for MC dropout): a
        finite number >= 0, or a tensor/array-like of such values broadcastable to (B, ...)
        (cast to the samples' dtype).
        samples: a tensor or an array-like, finite, T >= 1 (integers promoted to float).
        """
        array = isinstance(noise_var, (list, tuple, np.ndarray)) or (
            isinstance(noise_var, Tensor) and noise_var.ndim > 0
        )
        if array:
            noise_var = as_float_tensor("noise_var", noise_var)
            if bool((noise_var < 0).any()):
                raise ValueError(
                    f"noise_var must be >= 0 (a variance), got min {noise_var.min().item():.3g}"
                )
        else:
            noise_var = float(check_real("noise_var", noise_var, 0.0))
        samples = as_float_tensor("samples", samples)
        if samples.ndim < 2 or samples.shape[0] < 1:
            raise ValueError(
                f"samples must have shape (T, B, ...) with T >= 1, got {tuple(samples.shape)}"
            )
        mean = samples.mean(0)
        if array:
            try:
                fits = torch.broadcast_shapes(noise_var.shape, mean.shape) == mean.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"noise_var of shape {tuple(noise_var.shape)} must broadcast to the "
                    f"prediction's shape {tuple(mean.shape)}"
                )
            noise_var = noise_var.to(device=mean.device, dtype=mean.dtype)
        var = samples.var(0, correction=0) + noise_var
        return cls(mean=mean, var=var, samples=samples)

    @property
    def std(self) -> Tensor:
        """(B, ...) predictive standard deviation."""
        return self.var.sqrt()

    @property
    def n_samples(self) -> int:
        """T, or 0 for a closed-form prediction."""
        return 0 if self.samples is None else self.samples.shape[0]

    def interval(self, level: float = 0.95) -> tuple[Tensor, Tensor]:
        """Central Gaussian interval mean ± z·std holding probability ``level`` in (0, 1):
        (lower, upper), each (B, ...)."""
        check_real("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        z = math.sqrt(2.0) * torch.special.erfinv(torch.tensor(float(level), dtype=torch.float64))
        return self.mean - z.item() * self.std, self.mean + z.item() * self.std

    def covariance(self) -> Tensor:
        """(B, D, D) sample covariance of a vector output (T, B, D), without the noise term."""
        if self.samples is None or self.samples.ndim != 3:
            raise ValueError("covariance needs samples of shape (T, B, D)")
        centred = self.samples - self.mean
        return torch.einsum("tbi,tbj->bij", centred, centred) / self.samples.shape[0]

    def to(self, *args, **kwargs) -> Prediction:
        """Move every tensor, like ``Tensor.to``."""
        samples = None if self.samples is None else self.samples.to(*args, **kwargs)
        return Prediction(self.mean.to(*args, **kwargs), self.var.to(*args, **kwargs), samples)
