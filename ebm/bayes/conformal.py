"""Split conformal prediction: intervals (regression) and sets (classification) that contain the
truth with probability at least 1 − α, for ANY predictor and any data distribution, provided the
calibration points and the test point are exchangeable (e.g. i.i.d.).

The recipe (Vovk et al. 2005; Lei et al. 2018; Angelopoulos & Bates 2021): a score s(x, y) says
how badly y disagrees with the predictor at x; on n held-out calibration points, q̂ is the
⌈(n + 1)(1 − α)⌉-th smallest score; the prediction region of a new x is {y : s(x, y) ≤ q̂}.
Then P(Y ∈ C(X)) ≥ 1 − α over the draw of the calibration set and the test point, and, when the
scores are almost surely distinct (continuous, or randomised as APS/RAPS do), also
≤ 1 − α + 1/(n + 1). The guarantee is MARGINAL (on average over x), not conditional on x.

When ⌈(n + 1)(1 − α)⌉ > n (fewer than 1/α − 1 calibration points) no finite q̂ suffices: q̂ = +inf,
the intervals are (−inf, +inf) and the sets hold every class; ``calibrate`` warns.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_index_tensor,
    check_choice,
    check_generator,
    check_int,
    check_nonempty,
    check_real,
    make_generator,
)
from ebm.bayes.prediction import Prediction

__all__ = ["SplitConformalRegressor", "SplitConformalClassifier"]

_SCORES = ("absolute", "normalized", "cqr")
_METHODS = ("aps", "raps")


def _conformal_rank(n: int, alpha: float) -> int:
    """k = ⌈(n + 1)(1 − α)⌉, computed exactly (α read as the decimal it prints as, so that
    n = 9, α = 0.1 gives 9, not 10 from 10 · 0.9 = 9.000000000000002)."""
    return math.ceil((n + 1) * (1 - Fraction(repr(float(alpha)))))


def _conformal_quantile(scores: Tensor, alpha: float) -> Tensor:
    """The k-th smallest of the (n,) scores, k = ⌈(n + 1)(1 − α)⌉; +inf when k > n (0-dim)."""
    n = scores.shape[0]
    k = _conformal_rank(n, alpha)
    if k > n:
        warnings.warn(
            f"{n} calibration points are too few for alpha={alpha}: the conformal quantile "
            f"needs n >= {math.ceil(1 / float(alpha)) - 1}; the intervals are infinite and the "
            "sets hold every class",
            UserWarning,
            stacklevel=3,
        )
        return scores.new_tensor(math.inf)
    return scores.kthvalue(k).values


def _inputs(predictor: object, x: object) -> Tensor:
    """x as a finite floating tensor (B, ...), B >= 1, on an nn.Module predictor's device/dtype."""
    x = check_nonempty("x", as_float_tensor("x", x))
    if isinstance(predictor, nn.Module):
        param = next((p for p in predictor.parameters() if p.is_floating_point()), None)
        if param is not None:
            x = x.to(device=param.device, dtype=param.dtype)
    return x


@torch.no_grad()
def _call(predictor: object, x: Tensor, method: str = "predict") -> object:
    """predictor.<method>(x) for an estimator-like object (``ebm.bayes`` predictors, scikit-learn
    estimators), predictor(x) for an nn.Module or a plain callable."""
    bound = getattr(predictor, method, None)
    if callable(bound) and not isinstance(predictor, nn.Module):
        return bound(x)
    return predictor(x)


def _column(name: str, value: object, batch: int) -> Tensor:
    """A (B,) or (B, 1) output as a finite (B,) tensor, or a ValueError naming ``name``."""
    t = as_float_tensor(name, value)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (batch,):
        raise ValueError(
            f"{name} must have shape ({batch},) or ({batch}, 1) for x of {batch} points, got "
            f"{tuple(t.shape)}"
        )
    return t


def _check_predictor(predictor: object) -> None:
    if not callable(predictor) and not callable(getattr(predictor, "predict", None)):
        raise ValueError(
            f"predictor must be a callable x -> predictions or an object with .predict(x), got "
            f"{type(predictor).__name__}"
        )


class SplitConformalRegressor:
    """Split conformal prediction intervals around any regressor.

    predictor: what is conformalised; called on x (B, ...) as ``predictor.predict(x)`` when it
        has a ``predict`` method and is not an ``nn.Module`` (every ``ebm.bayes`` predictor,
        scikit-learn regressors), else as ``predictor(x)``. What it must return depends on
        ``score`` (every array (B,) or (B, 1), finite; tensors or array-likes):

        - "absolute": the mean μ(x), or a ``Prediction`` (its ``mean`` is used). Score |y − μ|;
          interval μ ± q̂: the same width everywhere.
        - "normalized": a ``Prediction`` (``mean``, ``std``; MC dropout, an ensemble, the GP) or a
          pair (μ, σ), σ > 0. Score |y − μ| / σ; interval μ ± q̂σ: wide where σ is.
        - "cqr": a pair (lower, upper) of quantile-regression predictions (typically of the α/2
          and 1 − α/2 quantiles) or one (B, 2) tensor of them (conformalised quantile
          regression, Romano, Patterson & Candès 2019). Score max(lower − y, y − upper);
          interval [lower − q̂, upper + q̂]. q̂ < 0 when the band is too wide, and the interval
          shrinks; where q̂ shrinks it past nothing (lower > upper) it is empty.
    alpha: the miscoverage, in (0, 1): intervals hold y with probability >= 1 − alpha.
    score: "absolute", "normalized" or "cqr" (above).

    ``calibrate(x, y)`` stores ``quantile_`` (q̂, 0-dim), ``scores_`` (n,) and
    ``n_calibration_``; q̂ is the ⌈(n + 1)(1 − α)⌉-th smallest score, or +inf (with a warning)
    when that rank exceeds n, and then every interval is (−inf, +inf). Guarantee (module
    docstring): for exchangeable calibration and test points, P(lower <= y <= upper) >= 1 − α,
    and <= 1 − α + 1/(n + 1) when the scores have no ties. It is marginal over x.

    >>> import torch
    >>> cp = SplitConformalRegressor(lambda x: 2 * x[:, 0], alpha=0.5)
    >>> cp = cp.calibrate(torch.zeros(3, 1), torch.tensor([1.0, -2.0, 3.0]))  # scores 1, 2, 3
    >>> cp.quantile_  # the ⌈4 · 0.5⌉ = 2nd smallest
    tensor(2.)
    >>> cp.predict(torch.ones(1, 1))
    (tensor([0.]), tensor([4.]))
    """

    def __init__(self, predictor: object, alpha: float = 0.1, score: str = "absolute") -> None:
        _check_predictor(predictor)
        check_real("alpha", alpha, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_choice("score", score, _SCORES)
        self.predictor, self.alpha, self.score = predictor, alpha, score

    def _outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(centre or lower (B,), spread or upper (B,)) from the predictor, per ``score``."""
        name, batch = "predictor(x)", x.shape[0]
        out = _call(self.predictor, x)
        if self.score == "absolute":
            if isinstance(out, (tuple, list)):
                raise ValueError(
                    f"{name} must return the mean (B,) for score='absolute', got a "
                    f"{type(out).__name__} of {len(out)} (a pair is for 'normalized' or 'cqr')"
                )
            mean = _column(name, out.mean if isinstance(out, Prediction) else out, batch)
            return mean, torch.ones_like(mean)
        if self.score == "normalized":
            if isinstance(out, Prediction):
                mean, std = out.mean, out.std
            elif isinstance(out, (tuple, list)) and len(out) == 2:
                mean, std = out
            else:
                raise ValueError(
                    f"{name} must return a Prediction or a pair (mean, std) for "
                    f"score='normalized', got {type(out).__name__}"
                )
            mean, std = _column(name, mean, batch), _column(name + " std", std, batch)
            if not bool((std > 0).all()):
                raise ValueError(
                    f"{name} must give a std > 0 everywhere for score='normalized', got "
                    f"{int((std <= 0).sum())} values <= 0"
                )
            return mean, std.to(mean.dtype)
        if isinstance(out, Prediction):
            raise ValueError(
                f"{name} must return quantile predictions (lower, upper) for score='cqr', got a "
                "Prediction (use score='normalized' for a mean and a std)"
            )
        if not isinstance(out, (tuple, list)):
            pair = as_float_tensor(name, out, ndim=2)
            if pair.shape[1] != 2:
                raise ValueError(
                    f"{name} must return (lower, upper) or a (B, 2) tensor for score='cqr', got "
                    f"shape {tuple(pair.shape)}"
                )
            out = pair.unbind(1)
        if len(out) != 2:
            raise ValueError(f"{name} must return a pair (lower, upper), got {len(out)} items")
        lower, upper = _column(name, out[0], batch), _column(name, out[1], batch)
        return lower, upper.to(lower.dtype)

    def _score(self, a: Tensor, b: Tensor, y: Tensor) -> Tensor:
        if self.score == "cqr":
            return torch.maximum(a - y, y - b)
        return (y - a).abs() / b

    def calibrate(self, x: Tensor, y: Tensor) -> SplitConformalRegressor:
        """Fit q̂ on held-out points (never the predictor's training data). Returns self.

        x: (n, ...) inputs, n >= 1; y: (n,) or (n, 1) targets; both finite, tensors or
        array-likes (integers promoted). x goes to the predictor as a floating tensor (on an
        ``nn.Module``'s device, in its dtype).
        """
        check_real("alpha", self.alpha, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_choice("score", self.score, _SCORES)
        x = _inputs(self.predictor, x)
        y = as_float_tensor("y", y, ndim=(1, 2))
        if (y.ndim == 2 and y.shape[1] != 1) or len(y) != len(x):
            raise ValueError(
                f"y must have shape ({len(x)},) or ({len(x)}, 1) to match x, got {tuple(y.shape)}"
            )
        a, b = self._outputs(x)
        scores = self._score(a, b, y.reshape(-1).to(device=a.device, dtype=a.dtype))
        self.scores_ = scores
        self.n_calibration_ = len(scores)
        self.quantile_ = _conformal_quantile(scores, self.alpha)
        return self

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Intervals for x (B, ...) (finite, B >= 1): (lower (B,), upper (B,)), in the dtype of
        the predictor's output; ±inf when q̂ is infinite."""
        if not hasattr(self, "quantile_"):
            raise ValueError("this SplitConformalRegressor is not calibrated: call calibrate(x, y)")
        a, b = self._outputs(_inputs(self.predictor, x))
        q = self.quantile_.to(device=a.device, dtype=a.dtype)
        if self.score == "cqr":
            return a - q, b + q
        return a - q * b, a + q * b


def _aps_scores(probs: Tensor, u: Tensor, lam: float, k_reg: int) -> Tensor:
    """(B, K) score of every label: Σ_{j<r} π_(j) + u·π_(r) + λ(r − k_reg)⁺, r its rank."""
    ordered, order = probs.sort(dim=1, descending=True, stable=True)
    before = ordered.cumsum(1) - ordered  # mass of the strictly better-ranked labels
    rank = torch.arange(1, probs.shape[1] + 1, device=probs.device, dtype=probs.dtype)
    penalty = lam * (rank - k_reg).clamp_min(0)
    sorted_scores = before + u[:, None] * ordered + penalty
    return torch.empty_like(probs).scatter_(1, order, sorted_scores)


class SplitConformalClassifier:
    """Split conformal prediction sets for any classifier: APS (Romano, Sesia & Candès 2020) or
    RAPS (Angelopoulos, Bates, Malik & Jordan 2021).

    predictor: called on x (B, ...) as ``predictor.predict_proba(x)`` if it has that method
        (scikit-learn classifiers), else ``predictor.predict(x)`` if it has ``predict`` and is not
        an ``nn.Module`` (``ebm.bayes`` predictors), else ``predictor(x)``. It returns class
        probabilities (B, K), rows in [0, 1] summing to 1 (wrap a net that returns logits as
        ``lambda x: net(x).softmax(-1)``), or a ``Prediction`` of logit samples (T, B, K) (MC
        dropout, an ensemble), whose ``mean_probs`` are used.
    alpha: the miscoverage, in (0, 1): sets hold the true class with probability >= 1 − alpha.
    method: "aps" or "raps". With π_(1) >= π_(2) >= ... the sorted probabilities of x and r the
        rank of label y (ties broken by class index), the score is
        s(x, y, u) = π_(1) + ... + π_(r−1) + u·π_(r) + λ·(r − k_reg)⁺,
        with λ = 0 for APS. The set of x is {y : s(x, y, u) <= q̂}: the top classes of x, as many
        as fit under q̂ (s grows with the rank). RAPS's penalty stops the long tails of small
        probabilities that APS sets drag in, so its sets are smaller when the tail is noisy.
    k_reg: RAPS's number of top classes left unpenalised, an int >= 0 (RAPS only).
    lam: RAPS's penalty λ per class beyond ``k_reg``, finite and >= 0 (RAPS only; 0 is APS).
        Angelopoulos et al. choose k_reg and λ on held-out data; the defaults suit few classes.
    randomized: u ~ U(0, 1), one per point, drawn as ``torch.rand(B, generator=...)`` on the CPU
        (calibration and test alike): the scores are then almost surely distinct and the
        coverage exact, in [1 − α, 1 − α + 1/(n + 1)]. False: u = 1 (the cumulative mass up to
        and including y): coverage >= 1 − α, larger sets.
    allow_empty: True (the exact method): a set may be empty when even the top class scores
        above q̂. False adds the top class to every empty set: coverage can only grow, and the
        upper bound no longer holds.
    seed: seeds the private generator of u (None: fresh entropy); a ``generator`` passed to
        ``calibrate``/``predict`` is used instead. The global RNG is never used.

    ``calibrate(x, y)`` stores ``quantile_`` (q̂, 0-dim; +inf, with a warning, when
    ⌈(n + 1)(1 − α)⌉ > n), ``scores_`` (n,) and ``n_calibration_``. The guarantee is marginal
    over x and assumes exchangeable calibration and test points (module docstring).

    >>> import torch
    >>> probs = torch.tensor([[0.7, 0.2, 0.1]])
    >>> cp = SplitConformalClassifier(lambda x: probs.expand(len(x), 3), alpha=0.5,
    ...                               randomized=False)
    >>> cp = cp.calibrate(torch.zeros(3, 1), torch.tensor([0, 1, 2]))  # scores 0.7, 0.9, 1.0
    >>> cp.predict(torch.zeros(1, 1))  # q̂ = 0.9: the two top classes
    tensor([[ True,  True, False]])
    """

    def __init__(
        self,
        predictor: object,
        alpha: float = 0.1,
        method: str = "aps",
        k_reg: int = 1,
        lam: float = 0.01,
        randomized: bool = True,
        allow_empty: bool = True,
        seed: int | None = None,
    ) -> None:
        _check_predictor(predictor)
        self.predictor, self.alpha, self.method = predictor, alpha, method
        self.k_reg, self.lam, self.randomized = k_reg, lam, randomized
        self.allow_empty, self.seed = allow_empty, seed
        self._check_params()
        self._generator: torch.Generator | None = None

    def _check_params(self) -> None:
        check_real("alpha", self.alpha, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_choice("method", self.method, _METHODS)
        check_int("k_reg", self.k_reg, minimum=0)
        check_real("lam", self.lam, 0.0)
        check_choice("randomized", self.randomized, (True, False))
        check_choice("allow_empty", self.allow_empty, (True, False))
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)

    def _probs(self, x: Tensor) -> Tensor:
        name = "predictor(x)"
        method = "predict_proba" if hasattr(self.predictor, "predict_proba") else "predict"
        out = _call(self.predictor, x, method)
        if isinstance(out, Prediction):
            from ebm.bayes.classification import mean_probs

            out = mean_probs(out)
        probs = as_float_tensor(name, out, ndim=2)
        if probs.shape[0] != x.shape[0] or probs.shape[1] < 1:
            raise ValueError(
                f"{name} must return probabilities (B, K) for x of B = {x.shape[0]} points, got "
                f"shape {tuple(probs.shape)}"
            )
        tol = math.sqrt(torch.finfo(probs.dtype).eps)
        bad = (probs < 0) | (probs > 1)
        off = (probs.sum(1) - 1).abs() > tol
        if bool(bad.any()) or bool(off.any()):
            raise ValueError(
                f"{name} must return class probabilities (rows in [0, 1] summing to 1; for "
                f"logits pass lambda x: net(x).softmax(-1)): {int(bad.sum())} values outside "
                f"[0, 1], {int(off.sum())} rows not summing to 1"
            )
        return probs

    def _u(self, n: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
        if not self.randomized:
            return torch.ones(n, dtype=like.dtype, device=like.device)
        if generator is None:
            if self._generator is None:
                self._generator = make_generator(self.seed)
            generator = self._generator
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return u.to(device=like.device, dtype=like.dtype)

    def _scores(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        probs = self._probs(_inputs(self.predictor, x))
        lam = float(self.lam) if self.method == "raps" else 0.0
        u = self._u(len(probs), probs, generator)
        return _aps_scores(probs, u, lam, int(self.k_reg))

    def calibrate(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> SplitConformalClassifier:
        """Fit q̂ on held-out points (never the predictor's training data). Returns self.

        x: (n, ...) inputs, finite, n >= 1 (tensors or array-likes; on an ``nn.Module``
        predictor's device and dtype). y: (n,) integer class indices in [0, K).
        generator: the source of u (None: the private one, seeded by ``seed``); a CPU generator.
        """
        self._check_params()
        check_generator("generator", generator, "cpu")
        x = check_nonempty("x", as_float_tensor("x", x))
        labels = as_index_tensor("y", y, ndim=1)
        if len(labels) != len(x):
            raise ValueError(f"y must have one label per row of x ({len(x)}), got {len(labels)}")
        scores = self._scores(x, generator)
        if int(labels.max()) >= scores.shape[1]:
            raise ValueError(
                f"y must hold class indices in [0, {scores.shape[1]}) (the predictor's K), got "
                f"max {int(labels.max())}"
            )
        self.scores_ = scores.gather(1, labels.to(scores.device)[:, None])[:, 0]
        self.n_calibration_ = len(labels)
        self.quantile_ = _conformal_quantile(self.scores_, self.alpha)
        return self

    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Prediction sets for x (B, ...) (finite, B >= 1): a (B, K) bool tensor, True for the
        classes in each set; ``.sum(1)`` gives the set sizes. generator: as in ``calibrate``."""
        if not hasattr(self, "quantile_"):
            raise ValueError(
                "this SplitConformalClassifier is not calibrated: call calibrate(x, y)"
            )
        check_generator("generator", generator, "cpu")
        scores = self._scores(x, generator)
        sets = scores <= self.quantile_.to(device=scores.device, dtype=scores.dtype)
        if not self.allow_empty:
            sets.scatter_(1, scores.argmin(1, keepdim=True), True)
        return sets
