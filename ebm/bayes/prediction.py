"""One predictive distribution type shared by every Bayesian predictor in ``ebm.bayes``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ebm._checks import check_tensor


@dataclass(frozen=True)
class Prediction:
    """A predictive distribution summarised per output element.

    mean: (B, ...) predictive mean.
    var: (B, ...) predictive variance (per element; the diagonal of the covariance).
    samples: (T, B, ...) the Monte Carlo samples it came from, or None for closed-form
        predictors (the GP).
    """

    mean: Tensor
    var: Tensor
    samples: Tensor | None = None

    def __post_init__(self) -> None:
        check_tensor("mean", self.mean)
        check_tensor("var", self.var)
        if self.var.shape != self.mean.shape:
            raise ValueError(
                f"var must have the shape of mean {tuple(self.mean.shape)}, "
                f"got {tuple(self.var.shape)}"
            )
        if self.samples is not None:
            check_tensor("samples", self.samples)
            if self.samples.shape[1:] != self.mean.shape:
                raise ValueError(
                    f"samples must have shape (T, *{tuple(self.mean.shape)}), "
                    f"got {tuple(self.samples.shape)}"
                )

    @classmethod
    def from_samples(cls, samples: Tensor, noise_var: float | Tensor = 0.0) -> Prediction:
        """Mean and variance over the first axis of ``samples`` (T, B, ...), plus ``noise_var``.

        The variance is the population one, (1/T) Σ (y_t − ȳ)², as in Gal & Ghahramani's
        eq. (21.2 in the notes); ``noise_var`` is the aleatoric part (τ⁻¹ for MC dropout).
        """
        check_tensor("samples", samples)
        if samples.ndim < 2 or samples.shape[0] < 1:
            raise ValueError(f"samples must have shape (T, B, ...), got {tuple(samples.shape)}")
        mean = samples.mean(0)
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
        """Central Gaussian interval mean ± z·std holding probability ``level``: (lower, upper)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        z = math.sqrt(2.0) * torch.special.erfinv(torch.tensor(level, dtype=torch.float64)).item()
        return self.mean - z * self.std, self.mean + z * self.std

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
