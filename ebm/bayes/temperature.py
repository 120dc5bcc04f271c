"""Post-hoc calibration of a classifier's logits (Guo, Pleiss, Sun & Weinberger 2017): a map with
one parameter (temperature scaling, z / T) or 2K (vector scaling, w ⊙ z + b) fitted by L-BFGS to
the negative log-likelihood of HELD-OUT labels, never the training set (where a trained net is
overconfident by construction). Temperature scaling leaves the argmax, hence the accuracy,
unchanged; vector scaling may change it.

Both follow scikit-learn's estimator habits: ``__init__`` stores parameters, ``fit`` returns
self, learned attributes end in ``_``, ``get_params``/``set_params`` make ``clone`` work. Logits
are tensors or array-likes, (N, K) with K >= 2, finite; labels (N,) integer indices in [0, K).
The fit runs in float64 on the logits' device; ``transform`` returns the logits' dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ebm._checks import as_float_tensor, as_index_tensor, check_int, check_nonempty
from ebm.bayes._lbfgs import minimize_lbfgs
from ebm.models._estimator import NotFittedError, ParamsMixin

__all__ = ["TemperatureScaling", "VectorScaling"]


def _logits(name: str, value: object, n_classes: int | None = None) -> Tensor:
    logits = check_nonempty(name, as_float_tensor(name, value, ndim=2))
    expected = "K >= 2" if n_classes is None else f"K = {n_classes} (as fitted)"
    if (n_classes is None and logits.shape[1] < 2) or (
        n_classes is not None and logits.shape[1] != n_classes
    ):
        raise ValueError(
            f"{name} must have shape (N, K) with {expected}, got {tuple(logits.shape)}"
        )
    return logits


def _fit_data(logits: object, labels: object) -> tuple[Tensor, Tensor]:
    z = _logits("logits", logits)
    y = as_index_tensor("labels", labels, ndim=1, high=z.shape[1], device=z.device)
    if len(y) != len(z):
        raise ValueError(f"labels must have one entry per row of logits ({len(z)}), got {len(y)}")
    return z.to(torch.float64), y


def _lbfgs(params: list[Tensor], loss_fn, max_iter: int) -> tuple[float, int]:
    """Minimise loss_fn() over params with strong-Wolfe L-BFGS; returns (final loss, iterations)."""
    n_iter = minimize_lbfgs(params, loss_fn, max_iter, tolerance_grad=1e-10, tolerance_change=1e-14)
    with torch.no_grad():
        return float(loss_fn()), n_iter


class _Scaling(ParamsMixin):
    """What both scalings share: the checks, ``__call__`` and ``predict_proba``."""

    def __init__(self, max_iter: int = 200) -> None:
        self.max_iter = max_iter
        check_int("max_iter", max_iter, minimum=1)

    def _check_fitted(self) -> None:
        if not hasattr(self, "nll_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(logits, labels) first"
            )

    def __call__(self, logits: Tensor) -> Tensor:
        """The same as ``transform(logits)``: (B, K) logits -> (B, K) calibrated logits."""
        return self.transform(logits)

    def predict_proba(self, logits: Tensor) -> Tensor:
        """(B, K) calibrated class probabilities: softmax of ``transform(logits)``.

        logits: (B, K), finite, K as fitted (tensors or array-likes)."""
        return self.transform(logits).softmax(-1)


class TemperatureScaling(_Scaling):
    """Divide logits by one temperature T > 0 fitted on held-out negative log-likelihood.

    max_iter: the most L-BFGS iterations (an int >= 1); the NLL is minimised over log T, which
        keeps T positive (in 1/T the problem is convex, so the optimum is unique).

    ``fit(logits, labels)`` stores ``temperature_`` (0-dim, float64, on the logits' device),
    ``nll_`` (the held-out NLL at T, a float) and ``n_iter_``. T > 1 softens an overconfident
    model; T < 1 sharpens an underconfident one.

    >>> import torch
    >>> ts = TemperatureScaling()
    >>> logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    >>> ts = ts.fit(logits, torch.tensor([0, 0, 1, 1]))  # right 3 times in 4: p = 3/4 at optimum
    >>> ts.predict_proba(logits)[0]
    tensor([0.7500, 0.2500])
    """

    def fit(self, logits: Tensor, labels: Tensor) -> TemperatureScaling:
        """Fit T on held-out logits (N, K) (K >= 2, finite) and labels (N,) in [0, K).

        Returns self."""
        max_iter = check_int("max_iter", self.max_iter, minimum=1)
        z, y = _fit_data(logits, labels)
        log_t = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
        nll, n_iter = _lbfgs([log_t], lambda: F.cross_entropy(z / log_t.exp(), y), max_iter)
        self.temperature_ = log_t.detach().exp()
        self.nll_, self.n_iter_ = nll, n_iter
        return self

    def transform(self, logits: Tensor) -> Tensor:
        """logits (B, K) -> logits / T (B, K), in the logits' floating dtype. Finite input, any
        K >= 2 (one temperature serves every class)."""
        self._check_fitted()
        z = _logits("logits", logits)
        return z / self.temperature_.to(device=z.device, dtype=z.dtype)


class VectorScaling(_Scaling):
    """Per-class scale and bias, z ↦ w ⊙ z + b (w, b: (K,)), fitted on held-out NLL.

    max_iter: the most L-BFGS iterations (an int >= 1). The NLL is convex in (w, b) (the logits
    are linear in them), so L-BFGS finds the global optimum. softmax ignores a constant added to
    every b_k: the fitted bias is centred (mean 0). With 2K parameters it needs more held-out
    points than temperature scaling, and it may change the argmax.

    ``fit(logits, labels)`` stores ``scale_`` (K,), ``bias_`` (K,) (float64, on the logits'
    device), ``nll_`` (a float) and ``n_iter_``.
    """

    def fit(self, logits: Tensor, labels: Tensor) -> VectorScaling:
        """Fit w and b on held-out logits (N, K) (K >= 2, finite) and labels (N,) in [0, K).

        Returns self."""
        max_iter = check_int("max_iter", self.max_iter, minimum=1)
        z, y = _fit_data(logits, labels)
        k = z.shape[1]
        w = torch.ones(k, dtype=torch.float64, device=z.device, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, device=z.device, requires_grad=True)
        nll, n_iter = _lbfgs([w, b], lambda: F.cross_entropy(z * w + b, y), max_iter)
        self.scale_ = w.detach()
        self.bias_ = (b - b.mean()).detach()
        self.nll_, self.n_iter_ = nll, n_iter
        return self

    def transform(self, logits: Tensor) -> Tensor:
        """logits (B, K) -> w ⊙ logits + b (B, K), in the logits' floating dtype. Finite input,
        K as fitted."""
        self._check_fitted()
        z = _logits("logits", logits, n_classes=len(self.scale_))
        return z * self.scale_.to(device=z.device, dtype=z.dtype) + self.bias_.to(
            device=z.device, dtype=z.dtype
        )
