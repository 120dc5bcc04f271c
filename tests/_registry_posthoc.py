"""Bad-input registry, part 4: post-hoc uncertainty (conformal prediction, temperature and vector
scaling), its metrics (adaptive ECE, AURC, FPR at 95 % TPR) and figures."""

from __future__ import annotations

import torch
from _bad_values import Choice, Data, Fn, Int, Labels, Real, Skip, V, randn
from matplotlib.figure import Figure

import ebm.bayes as bayes
import ebm.metrics as metrics
import ebm.plot as plot

OPEN_UNIT = Real(0, 1, False, False)
B = 6
X_NET = Data(ndim=False)  # (B, ...) through the user's predictor: its shape is the predictor's
W = randn(2, 3, seed=5)


def _x(n: int = B) -> torch.Tensor:
    return torch.linspace(-2, 2, n)[:, None] + 0.1 * randn(n, 2, seed=1)


def _mean(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0])


def _probs(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x @ W.to(x.dtype), 1)


def _labels() -> torch.Tensor:
    return torch.tensor([0, 2, 1, 1, 0, 2])


def _calibrated(cls, *data):
    """Construct, then calibrate on valid data: a bad hyper-parameter is refused by then."""

    def build_and_calibrate(**hyper):
        return cls(**hyper).calibrate(*data)

    return build_and_calibrate


def _fitted(cls, *data):
    def build_and_fit(**hyper):
        return cls(**hyper).fit(*data)

    return build_and_fit


def _regressor() -> bayes.SplitConformalRegressor:
    return bayes.SplitConformalRegressor(_mean, alpha=0.3).calibrate(_x(), torch.sin(_x()[:, 1]))


def _classifier() -> bayes.SplitConformalClassifier:
    cp = bayes.SplitConformalClassifier(_probs, alpha=0.3, method="raps", seed=0)
    return cp.calibrate(_x(), _labels())


def _logits() -> torch.Tensor:
    return 3 * randn(B, 3, seed=2)


def _axes():
    return Figure().add_subplot()


FLAG = Skip("a Matplotlib argument (a title, a label, a colour): Matplotlib checks it")
POSTHOC = {
    "ebm.bayes.SplitConformalRegressor": V(
        lambda: (
            _calibrated(bayes.SplitConformalRegressor, _x(), torch.sin(_x()[:, 1])),
            dict(predictor=_mean, alpha=0.3),
        ),
        predictor=Fn(),
        alpha=OPEN_UNIT,
        score=Choice(),
    ),
    "ebm.bayes.SplitConformalRegressor.calibrate": V(
        lambda: (
            bayes.SplitConformalRegressor(_mean, alpha=0.3).calibrate,
            dict(x=_x(), y=torch.sin(_x()[:, 1])),
        ),
        x=X_NET,
        y=Data(ndim=(1, 2), trailing=True),
    ),
    "ebm.bayes.SplitConformalRegressor.predict": V(
        lambda: (_regressor().predict, dict(x=_x(4))), x=X_NET
    ),
    "ebm.bayes.SplitConformalClassifier": V(
        lambda: (
            _calibrated(bayes.SplitConformalClassifier, _x(), _labels()),
            dict(predictor=_probs, alpha=0.3, method="raps", seed=0),
        ),
        predictor=Fn(),
        alpha=OPEN_UNIT,
        method=Choice(),
        k_reg=Int(0),
        lam=Real(0),
    ),
    "ebm.bayes.SplitConformalClassifier.calibrate": V(
        lambda: (
            bayes.SplitConformalClassifier(_probs, alpha=0.3, seed=0).calibrate,
            dict(x=_x(), y=_labels()),
        ),
        x=X_NET,
        y=Labels(3),
    ),
    "ebm.bayes.SplitConformalClassifier.predict": V(
        lambda: (_classifier().predict, dict(x=_x(4))), x=X_NET
    ),
    "ebm.bayes.TemperatureScaling": V(
        lambda: (_fitted(bayes.TemperatureScaling, _logits(), _labels()), dict(max_iter=20))
    ),
    "ebm.bayes.TemperatureScaling.fit": V(
        lambda: (bayes.TemperatureScaling().fit, dict(logits=_logits(), labels=_labels())),
        logits=Data(),
        labels=Labels(3),
    ),
    "ebm.bayes.TemperatureScaling.transform": V(
        lambda: (
            bayes.TemperatureScaling().fit(_logits(), _labels()).transform,
            dict(logits=randn(4, 3, seed=3)),
        ),
        logits=Data(),
    ),
    "ebm.bayes.TemperatureScaling.predict_proba": V(
        lambda: (
            bayes.TemperatureScaling().fit(_logits(), _labels()).predict_proba,
            dict(logits=randn(4, 3, seed=3)),
        ),
        logits=Data(),
    ),
    "ebm.bayes.TemperatureScaling.get_params": V(
        lambda: (bayes.TemperatureScaling().get_params, {})
    ),
    "ebm.bayes.VectorScaling": V(
        lambda: (_fitted(bayes.VectorScaling, _logits(), _labels()), dict(max_iter=20))
    ),
    "ebm.bayes.VectorScaling.fit": V(
        lambda: (bayes.VectorScaling().fit, dict(logits=_logits(), labels=_labels())),
        logits=Data(),
        labels=Labels(3),
    ),
    "ebm.bayes.VectorScaling.transform": V(
        lambda: (
            bayes.VectorScaling().fit(_logits(), _labels()).transform,
            dict(logits=randn(4, 3, seed=3)),
        ),
        logits=Data(trailing=True),  # K as fitted
    ),
    "ebm.bayes.VectorScaling.predict_proba": V(
        lambda: (
            bayes.VectorScaling().fit(_logits(), _labels()).predict_proba,
            dict(logits=randn(4, 3, seed=3)),
        ),
        logits=Data(trailing=True),
    ),
    "ebm.bayes.VectorScaling.get_params": V(lambda: (bayes.VectorScaling().get_params, {})),
    # ---- metrics
    "ebm.metrics.adaptive_ece": V(
        lambda: (
            metrics.adaptive_ece,
            dict(probs=randn(B, 3).softmax(1), labels=_labels(), n_bins=2),
        ),
        probs=Data(),
        labels=Labels(3),
    ),
    "ebm.metrics.aurc": V(
        lambda: (
            metrics.aurc,
            dict(confidence=randn(B), correct=torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])),
        ),
        confidence=Data(trailing=True),
        correct=Data(trailing=True),
    ),
    "ebm.metrics.fpr_at_tpr": V(
        lambda: (metrics.fpr_at_tpr, dict(scores_in=randn(B), scores_out=randn(4, seed=1) + 1)),
        tpr=Real(0, 1, low_inclusive=False),
    ),
    # ---- figures: the data are checked before anything is drawn
    "ebm.plot.reliability_diagram": V(
        lambda: (
            plot.reliability_diagram,
            dict(ax=_axes(), probs=randn(B, 3).softmax(1), labels=_labels(), n_bins=3),
        ),
        ax=Skip("a Matplotlib Axes"),
        probs=Data(),
        labels=Labels(3),
        title=FLAG,
        color=FLAG,
    ),
    "ebm.plot.coverage_curve": V(
        lambda: (
            plot.coverage_curve,
            dict(
                ax=_axes(),
                alphas=torch.tensor([0.1, 0.2, 0.5]),
                coverage=torch.tensor([0.92, 0.79, 0.5]),
                n_calibration=20,
            ),
        ),
        ax=Skip("a Matplotlib Axes"),
        alphas=Data(trailing=True),
        coverage=Data(trailing=True),
        n_calibration=Int(1),
        label=FLAG,
        title=FLAG,
        color=FLAG,
    ),
}
