"""The reliability diagram and the coverage-vs-α plot: what they compute and draw."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ebm import plot
from ebm.metrics import adaptive_ece, expected_calibration_error


def _axes():
    return Figure().add_subplot()


def _probs(n: int = 200, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, 4, generator=g, dtype=torch.float64), 1)
    labels = torch.randint(0, 4, (n,), generator=g)
    return probs, labels


@pytest.mark.parametrize("adaptive", [False, True])
def test_reliability_diagram_bins(adaptive):
    probs, labels = _probs()
    ax = _axes()
    stats = plot.reliability_diagram(ax, probs, labels, n_bins=5, adaptive=adaptive, title="t")
    count, accuracy, confidence = stats["count"], stats["accuracy"], stats["confidence"]
    assert count.sum().item() == len(labels)
    full = count > 0
    # the count-weighted gaps are the ECE the metric reports
    weighted = (count[full] * (accuracy[full] - confidence[full]).abs()).sum() / len(labels)
    metric = adaptive_ece if adaptive else expected_calibration_error
    assert weighted.item() == pytest.approx(metric(probs, labels, 5).item(), rel=1e-12)
    assert stats["ece"].item() == pytest.approx(weighted.item(), rel=1e-12)
    if adaptive:
        assert count.tolist() == [40.0] * 5
    else:  # equal widths: bin k holds the confidences in (k/5, (k+1)/5]
        top = probs.max(1).values.numpy()
        expected = np.histogram(top, bins=np.linspace(0, 1, 6))[0]
        assert count.tolist() == expected.tolist()
        assert bool(torch.isnan(accuracy[~full]).all())
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "t"
    assert len(ax.patches) == 2 * int(full.sum())  # a bar and its gap per non-empty bin


def test_reliability_diagram_of_a_calibrated_model_has_small_gaps():
    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(2 * torch.randn(20000, 3, generator=g, dtype=torch.float64), 1)
    labels = torch.multinomial(probs, 1, generator=g)[:, 0]  # labels drawn from the probs
    stats = plot.reliability_diagram(_axes(), probs, labels, n_bins=10)
    assert stats["ece"].item() < 0.02


def test_coverage_curve_draws_the_diagonal_once():
    ax = _axes()
    alphas = torch.tensor([0.3, 0.1, 0.2])
    line = plot.coverage_curve(ax, alphas, [0.72, 0.91, 0.81], n_calibration=50, label="a")
    np.testing.assert_allclose(line.get_xdata(), [0.7, 0.8, 0.9], rtol=1e-6)  # sorted by level
    np.testing.assert_allclose(line.get_ydata(), [0.72, 0.81, 0.91], rtol=1e-6)
    plot.coverage_curve(ax, alphas, [0.7, 0.8, 0.9], label="b")
    diagonals = [line for line in ax.lines if line.get_gid() == "ebm-diagonal"]
    assert len(diagonals) == 1 and len(ax.lines) == 3
    assert ax.get_xlabel() == "nominal coverage 1 − α"


def test_bad_inputs_are_named():
    probs, labels = _probs(10)
    with pytest.raises(ValueError, match="n_bins"):
        plot.reliability_diagram(_axes(), probs, labels, n_bins=0)
    with pytest.raises(ValueError, match="probs"):
        plot.reliability_diagram(_axes(), probs * 2, labels)
    with pytest.raises(ValueError, match="alphas must lie in"):
        plot.coverage_curve(_axes(), [0.0, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="coverage must lie in"):
        plot.coverage_curve(_axes(), [0.1, 0.5], [1.5, 0.5])
    with pytest.raises(ValueError, match="coverage must have the same shape"):
        plot.coverage_curve(_axes(), [0.1, 0.5], [0.5])
    with pytest.raises(ValueError, match="coverage contains NaN"):
        plot.coverage_curve(_axes(), [0.1, 0.5], [math.nan, 0.5])
    with pytest.raises(ValueError, match="n_calibration"):
        plot.coverage_curve(_axes(), [0.1], [0.9], n_calibration=0)
