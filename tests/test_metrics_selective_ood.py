"""AURC, FPR at 95 % TPR and the adaptive ECE: closed forms, hand computations, numpy/sklearn
references, tie handling and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from ebm.metrics import adaptive_ece, aurc, expected_calibration_error, fpr_at_tpr


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- AURC -------------------------------------------------------------------------------------


def _aurc_reference(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The definition for distinct confidences: mean over k of the error rate of the top k."""
    order = np.argsort(-confidence)
    errors = 1 - correct[order]
    k = np.arange(1, len(errors) + 1)
    return float(np.mean(np.cumsum(errors) / k))


def test_aurc_matches_the_definition():
    g = _gen(0)
    confidence = torch.rand(200, generator=g, dtype=torch.float64)
    correct = torch.rand(200, generator=g, dtype=torch.float64) < confidence
    expected = _aurc_reference(confidence.numpy(), correct.double().numpy())
    assert aurc(confidence, correct).item() == pytest.approx(expected, rel=1e-12)


def test_aurc_closed_forms():
    n, n_wrong = 100, 20
    conf = torch.linspace(1, 0, n, dtype=torch.float64)
    right = torch.ones(n, dtype=torch.bool)
    assert aurc(conf, right).item() == 0.0
    assert aurc(conf, ~right).item() == 1.0
    # every error least confident: the optimum (1/N) Σ_{k > N − e} (k − (N − e)) / k
    best = right.clone()
    best[-n_wrong:] = False
    optimum = sum((k - (n - n_wrong)) / k for k in range(n - n_wrong + 1, n + 1)) / n
    assert aurc(conf, best).item() == pytest.approx(optimum, rel=1e-12)
    r = n_wrong / n  # and its large-N limit r + (1 − r) ln(1 − r)
    assert optimum == pytest.approx(r + (1 - r) * math.log(1 - r), abs=0.01)
    # every error most confident: the worst
    worst = best.flip(0)
    assert aurc(conf, worst) > aurc(conf, best)
    # all confidences tied: no ranking at all, the error rate
    assert aurc(torch.ones(n, dtype=torch.float64), best).item() == pytest.approx(r, rel=1e-12)


def test_aurc_ties_are_averaged_over_their_orders():
    conf = torch.tensor([0.9, 0.5, 0.5, 0.1])
    correct = torch.tensor([1.0, 1.0, 0.0, 1.0])
    a = _aurc_reference(np.array([0.9, 0.5, 0.4, 0.1]), correct.numpy())  # right one first
    b = _aurc_reference(np.array([0.9, 0.4, 0.5, 0.1]), correct.numpy())  # wrong one first
    assert aurc(conf, correct).item() == pytest.approx((a + b) / 2, rel=1e-6)
    assert aurc(conf.flip(0), correct.flip(0)).item() == pytest.approx((a + b) / 2, rel=1e-6)


def test_aurc_bad_inputs():
    with pytest.raises(ValueError, match="correct must hold bools or 0/1"):
        aurc(torch.rand(4, generator=_gen(0)), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="correct must have the shape of confidence"):
        aurc(torch.rand(4, generator=_gen(0)), torch.ones(3))
    with pytest.raises(ValueError, match="confidence contains NaN"):
        aurc(torch.tensor([0.1, math.nan]), torch.ones(2))
    with pytest.raises(ValueError, match="confidence must hold at least one"):
        aurc(torch.zeros(0), torch.zeros(0))


# ---- FPR at 95 % TPR --------------------------------------------------------------------------


def _sklearn_fpr(scores_in: np.ndarray, scores_out: np.ndarray, tpr: float) -> float:
    labels = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    fpr_curve, tpr_curve, _ = roc_curve(
        labels, np.r_[scores_in, scores_out], drop_intermediate=False
    )
    return float(fpr_curve[np.searchsorted(tpr_curve, tpr - 1e-12, side="left")])


@pytest.mark.parametrize("tpr", [0.95, 0.8, 0.5, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_fpr_at_tpr_matches_sklearn_roc_curve(tpr, ties):
    g = _gen(1)
    s_in = torch.randn(300, generator=g, dtype=torch.float64)
    s_out = torch.randn(137, generator=g, dtype=torch.float64) + 1.5
    if ties:  # integer scores: many ties, across both sets
        s_in, s_out = (4 * s_in).round(), (4 * s_out).round()
    expected = _sklearn_fpr(s_in.numpy(), s_out.numpy(), tpr)
    assert fpr_at_tpr(s_in, s_out, tpr).item() == pytest.approx(expected, abs=1e-15)


def test_fpr_at_tpr_limits_and_hand_values():
    s_in = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert fpr_at_tpr(s_in, torch.tensor([0.5, 0.6]), 1.0).item() == 0.0  # separated
    assert fpr_at_tpr(s_in, torch.tensor([0.0, 0.6]), 1.0).item() == 1.0  # the lowest OOD score
    # 20 OOD scores 1..20: 95 % TPR flags 19 of them, threshold 2: in-scores 1.5, 2.5, 3 flagged
    s_out = torch.arange(1.0, 21.0)
    assert fpr_at_tpr(torch.tensor([0.5, 1.5, 2.5, 3.0]), s_out).item() == 0.5
    assert (
        fpr_at_tpr(torch.tensor([1, 2, 3]), torch.tensor([3, 4])).dtype == torch.get_default_dtype()
    )


def test_fpr_at_tpr_bad_inputs():
    with pytest.raises(ValueError, match="tpr"):
        fpr_at_tpr(torch.rand(3, generator=_gen(0)), torch.rand(3, generator=_gen(1)), tpr=0.0)
    with pytest.raises(ValueError, match="scores_out contains NaN"):
        fpr_at_tpr(torch.rand(3, generator=_gen(0)), torch.tensor([math.nan]))
    with pytest.raises(ValueError, match="scores_in must hold at least one"):
        fpr_at_tpr(torch.zeros(0), torch.rand(3, generator=_gen(1)))


# ---- adaptive ECE -----------------------------------------------------------------------------


def _ace_reference(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    order = np.argsort(confidence, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, n_bins):
        if len(chunk):
            total += len(chunk) * abs(correct[chunk].mean() - confidence[chunk].mean())
    return total / len(labels)


@pytest.mark.parametrize("n_bins", [1, 4, 15, 101, 500])
def test_adaptive_ece_matches_a_numpy_reference(n_bins):
    g = _gen(2)
    probs = torch.softmax(2 * torch.randn(101, 5, generator=g, dtype=torch.float64), 1)
    labels = torch.randint(0, 5, (101,), generator=g)
    expected = _ace_reference(probs.numpy(), labels.numpy(), n_bins)
    assert adaptive_ece(probs, labels, n_bins).item() == pytest.approx(expected, rel=1e-12)


def test_adaptive_ece_limits():
    g = _gen(3)
    probs = torch.softmax(torch.randn(60, 4, generator=g, dtype=torch.float64), 1)
    labels = torch.randint(0, 4, (60,), generator=g)
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).double()
    one_bin = (correct.mean() - confidence.mean()).abs()
    assert adaptive_ece(probs, labels, 1).item() == pytest.approx(one_bin.item(), rel=1e-12)
    per_point = (correct - confidence).abs().mean()
    assert adaptive_ece(probs, labels, 60).item() == pytest.approx(per_point.item(), rel=1e-12)
    # equal-width and equal-mass ECE agree with one bin
    assert adaptive_ece(probs, labels, 1) == pytest.approx(
        expected_calibration_error(probs, labels, 1)
    )
    # a perfectly confident, always right classifier
    sure = torch.eye(4, dtype=torch.float64)[labels]
    assert adaptive_ece(sure, labels).item() == 0.0


def test_adaptive_ece_bad_inputs():
    probs = torch.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="n_bins"):
        adaptive_ece(probs, torch.tensor([0, 1, 0]), n_bins=0)
    with pytest.raises(ValueError, match="probs must have rows summing to 1"):
        adaptive_ece(torch.full((3, 2), 0.4), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="labels must hold indices"):
        adaptive_ece(probs, torch.tensor([0, 2, 0]))
