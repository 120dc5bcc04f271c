"""Uncertainty metrics against scipy / scikit-learn references, closed forms and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm
from sklearn.metrics import brier_score_loss, roc_auc_score

from ebm.metrics import (
    brier_score,
    calibration_curve,
    crps_gaussian,
    crps_samples,
    expected_calibration_error,
    gaussian_nll,
    interval_coverage,
    ood_auroc,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_nll_matches_scipy():
    y, mean = torch.randn(20, generator=gen(0)), torch.randn(20, generator=gen(1))
    var = torch.rand(20, generator=gen(2)) + 0.1
    ref = -norm.logpdf(y.numpy(), mean.numpy(), var.sqrt().numpy())
    got = gaussian_nll(y, mean, var, reduction="none")
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5)
    assert gaussian_nll(y, mean, var).item() == pytest.approx(ref.mean(), rel=1e-5)
    assert gaussian_nll(y, mean, var, reduction="sum").item() == pytest.approx(ref.sum(), rel=1e-5)


@pytest.mark.parametrize("y,mu,sigma", [(0.3, 0.0, 1.0), (2.5, -1.0, 0.5), (-4.0, 1.0, 3.0)])
def test_crps_gaussian_matches_numerical_integration(y, mu, sigma):
    # CRPS(F, y) = ∫ (F(t) − 1[t >= y])² dt
    left, _ = integrate.quad(lambda t: norm.cdf(t, mu, sigma) ** 2, -np.inf, y)
    right, _ = integrate.quad(lambda t: (1 - norm.cdf(t, mu, sigma)) ** 2, y, np.inf)
    got = crps_gaussian(torch.tensor([y]), torch.tensor([mu]), torch.tensor([sigma**2]))
    assert got.item() == pytest.approx(left + right, rel=1e-5)


def test_crps_samples_tends_to_the_closed_form():
    y = torch.tensor([0.3, 2.0, -1.0], dtype=torch.float64)
    mean = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    std = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    samples = mean + std * torch.randn(200_000, 3, generator=gen(3), dtype=torch.float64)
    got = crps_samples(y, samples, reduction="none")
    ref = crps_gaussian(y, mean, std**2, reduction="none")
    torch.testing.assert_close(got, ref, rtol=0.01, atol=0)


def test_crps_samples_small_cases():
    y = torch.tensor([1.0])
    assert crps_samples(y, torch.tensor([[3.0]])).item() == pytest.approx(2.0)  # T=1: |x − y|
    x = torch.randn(7, 1, generator=gen(4))
    brute = (x - y).abs().mean() - 0.5 * (x[:, None] - x[None, :]).abs().mean()
    assert crps_samples(y, x).item() == pytest.approx(brute.item(), rel=1e-5)


def test_coverage_and_calibration_of_a_calibrated_model():
    n = 40_000
    y = torch.randn(n, generator=gen(5))
    mean, var = torch.zeros(n), torch.ones(n)
    se = math.sqrt(0.95 * 0.05 / n)
    assert abs(interval_coverage(y, mean, var, 0.95).item() - 0.95) < 4 * se
    levels, observed = calibration_curve(y, mean, var, levels=9)
    torch.testing.assert_close(levels, torch.arange(1, 10) / 10.0)
    assert (observed - levels).abs().max() < 0.015
    overconfident = calibration_curve(y, mean, 0.25 * var, levels=9)[1]
    assert (overconfident < levels).all()


def test_brier_matches_scikit_learn():
    probs = torch.softmax(torch.randn(50, 4, generator=gen(6), dtype=torch.float64), 1)
    labels = torch.randint(0, 4, (50,), generator=gen(7))
    ref = brier_score_loss(labels.numpy(), probs.numpy(), labels=[0, 1, 2, 3], scale_by_half=False)
    assert brier_score(probs, labels).item() == pytest.approx(ref)
    p1 = torch.rand(30, generator=gen(8)).double()
    y = (torch.rand(30, generator=gen(9)) < 0.5).long()
    binary = brier_score(torch.stack([1 - p1, p1], 1), y)
    assert binary.item() == pytest.approx(2 * brier_score_loss(y.numpy(), p1.numpy()))


def test_ece_closed_cases():
    # always 90 % confident, right 60 % of the time: ECE = 0.3
    probs = torch.tensor([[0.9, 0.1]]).repeat(10, 1)
    labels = torch.tensor([0] * 6 + [1] * 4)
    assert expected_calibration_error(probs, labels).item() == pytest.approx(0.3)
    # labels drawn from the stated probabilities: ECE -> 0
    n = 50_000
    p = torch.rand(n, generator=gen(10)) * 0.5 + 0.5
    y = (torch.rand(n, generator=gen(11)) >= p).long()  # class 0 with probability p
    ece = expected_calibration_error(torch.stack([p, 1 - p], 1), y, n_bins=10)
    assert ece.item() < 0.01


def test_ood_auroc_matches_scikit_learn_with_ties():
    s_in = torch.randn(80, generator=gen(12)).round()
    s_out = (torch.randn(40, generator=gen(13)) + 1).round()
    ref = roc_auc_score([0] * 80 + [1] * 40, torch.cat([s_in, s_out]).numpy())
    assert ood_auroc(s_in, s_out).item() == pytest.approx(ref)


def test_bad_input():
    z = torch.zeros(3)
    with pytest.raises(ValueError, match="var"):
        gaussian_nll(z, z, z)
    with pytest.raises(ValueError, match="mean"):
        crps_gaussian(z, torch.zeros(4), torch.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        gaussian_nll(z, z, torch.ones(3), reduction="max")
    with pytest.raises(ValueError, match="samples"):
        crps_samples(z, torch.zeros(5, 4))
    with pytest.raises(ValueError, match="level"):
        interval_coverage(z, z, torch.ones(3), level=1.0)
    with pytest.raises(ValueError, match="labels"):
        brier_score(torch.full((2, 2), 0.5), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(torch.full((2, 2), 0.5), torch.tensor([0, 1]), n_bins=0)
    with pytest.raises(ValueError, match="non-empty"):
        ood_auroc(torch.zeros(0), torch.zeros(3))


# ---- the input convention (issue 12) --------------------------------------------------------


def test_ood_auroc_of_integer_scores_is_not_truncated():
    # integer scores used to give an integer AUROC: 0 instead of ~0.65
    s_in = torch.randint(0, 10, (30,), generator=gen(20))
    s_out = torch.randint(3, 13, (20,), generator=gen(21))
    ref = roc_auc_score([0] * 30 + [1] * 20, torch.cat([s_in, s_out]).numpy())
    assert 0.5 < ref < 0.9
    got = ood_auroc(s_in, s_out)
    assert got.dtype == torch.get_default_dtype()
    assert got.item() == pytest.approx(ref)
    assert got.item() == pytest.approx(ood_auroc(s_in.float(), s_out.float()).item())
    # array-likes and bools: the same ranks
    assert ood_auroc(s_in.numpy(), s_out.tolist()).item() == pytest.approx(ref)
    b_in, b_out = s_in > 6, s_out > 6
    ref_bool = roc_auc_score([0] * 30 + [1] * 20, torch.cat([b_in, b_out]).numpy())
    assert ood_auroc(b_in, b_out).item() == pytest.approx(ref_bool)


def test_ood_auroc_ranks_large_integers_exactly():
    # 2**24 + 1 and 2**24 are one float32 value: ranked in float32 they would tie (AUROC ½)
    s_in, s_out = torch.tensor([2**24]), torch.tensor([2**24 + 1])
    assert ood_auroc(s_in, s_out).item() == 1.0


def test_calibration_curve_of_integer_inputs_is_not_truncated():
    y = torch.randint(-3, 4, (200,), generator=gen(22))
    mean, var = torch.zeros(200, dtype=torch.long), torch.full((200,), 4)
    levels, observed = calibration_curve(y, mean, var, levels=4)
    ref_levels, ref_observed = calibration_curve(y.float(), mean.float(), var.float(), levels=4)
    torch.testing.assert_close(levels, torch.tensor([0.2, 0.4, 0.6, 0.8]))
    torch.testing.assert_close(levels, ref_levels)
    torch.testing.assert_close(observed, ref_observed)
    # by hand: |y| / 2 <= z_level, z = Φ⁻¹(½ + level/2)
    z = torch.from_numpy(norm.ppf(0.5 + levels.double().numpy() / 2))
    by_hand = ((y.abs().double() / 2)[None, :] <= z[:, None]).double().mean(1)
    torch.testing.assert_close(observed.double(), by_hand)


def test_regression_scores_accept_array_likes_and_promote_mixed_dtypes():
    y, mean = torch.randn(20, generator=gen(23)), torch.randn(20, generator=gen(24))
    var = torch.rand(20, generator=gen(25)) + 0.1
    ref = gaussian_nll(y.double(), mean.double(), var.double())
    got = gaussian_nll(y.numpy().tolist(), mean.double(), var.numpy())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, ref)
    # a float32 y with a float64 mean is computed in float64, not cast down
    assert crps_gaussian(y, mean.double(), var).dtype == torch.float64
    assert interval_coverage(y.int(), mean.int(), var.ceil().int()).dtype == torch.float32


def test_brier_and_ece_take_array_likes_and_bool_labels():
    p1 = torch.rand(30, generator=gen(26)).double()
    y = torch.rand(30, generator=gen(27)) < 0.5
    probs = torch.stack([1 - p1, p1], 1)
    ref = 2 * brier_score_loss(y.numpy(), p1.numpy())
    assert brier_score(probs.numpy(), y.tolist()).item() == pytest.approx(ref)
    assert brier_score(probs, y).item() == pytest.approx(ref)
    ece = expected_calibration_error(probs.tolist(), y.long().numpy(), n_bins=5)
    assert ece.item() == pytest.approx(expected_calibration_error(probs, y.long(), 5).item())


NAN3 = torch.tensor([0.0, float("nan"), 1.0])
INF3 = torch.tensor([0.0, float("inf"), 1.0])
Z3, ONE3 = torch.zeros(3), torch.ones(3)
PROBS = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
LABELS = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: gaussian_nll(NAN3, Z3, ONE3), "y"),
        (lambda: gaussian_nll(Z3, INF3, ONE3), "mean"),
        (lambda: crps_gaussian(Z3, Z3, INF3), "var"),
        (lambda: crps_gaussian(Z3, Z3, -ONE3), "var"),
        (lambda: gaussian_nll(torch.zeros(0), torch.zeros(0), torch.zeros(0)), "y"),
        (lambda: gaussian_nll(Z3, Z3, ONE3, reduction=None), "reduction"),
        (lambda: gaussian_nll("abc", Z3, ONE3), "y"),
        (lambda: crps_samples(Z3, torch.full((4, 3), float("nan"))), "samples"),
        (lambda: crps_samples(INF3, torch.zeros(4, 3)), "y"),
        (lambda: crps_samples(Z3, torch.zeros(4, 3), reduction="max"), "reduction"),
        (lambda: crps_samples(torch.zeros(0), torch.zeros(4, 0)), "y"),
        (lambda: interval_coverage(Z3, Z3, ONE3, level=float("nan")), "level"),
        (lambda: interval_coverage(Z3, Z3, ONE3, level=0.0), "level"),
        (lambda: interval_coverage(Z3, Z3, ONE3, level=True), "level"),
        (lambda: interval_coverage(Z3, Z3, ONE3, level="0.9"), "level"),
        (lambda: calibration_curve(Z3, Z3, ONE3, levels=0), "levels"),
        (lambda: calibration_curve(Z3, Z3, ONE3, levels=True), "levels"),
        (lambda: calibration_curve(Z3, Z3, ONE3, levels=[0.5, 1.0]), "levels"),
        (lambda: calibration_curve(Z3, Z3, ONE3, levels=[]), "levels"),
        (lambda: calibration_curve(Z3, Z3, ONE3, levels=[0.5, float("nan")]), "levels"),
        (lambda: calibration_curve(Z3, Z3, NAN3), "var"),
        (lambda: brier_score(torch.tensor([[1.2, -0.2], [0.5, 0.5]]), LABELS), "probs"),
        (lambda: brier_score(torch.tensor([[0.5, 0.6], [0.5, 0.5]]), LABELS), "probs"),
        (lambda: brier_score(torch.tensor([[0.5, float("nan")], [0.5, 0.5]]), LABELS), "probs"),
        (lambda: brier_score(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), "probs"),
        (lambda: brier_score(PROBS, torch.tensor([0.0, 1.0])), "labels"),
        (lambda: brier_score(PROBS, torch.tensor([0, -1])), "labels"),
        (lambda: brier_score(PROBS, torch.tensor([0, 1, 1])), "labels"),
        (lambda: brier_score(PROBS, "01"), "labels"),
        (lambda: expected_calibration_error(PROBS, LABELS, n_bins=True), "n_bins"),
        (lambda: expected_calibration_error(PROBS, LABELS, n_bins=2.5), "n_bins"),
        (lambda: expected_calibration_error(PROBS * 2, LABELS), "probs"),
        (lambda: ood_auroc(NAN3, Z3), "scores_in"),
        (lambda: ood_auroc(Z3, INF3), "scores_out"),
        (lambda: ood_auroc(Z3, torch.zeros(0)), "scores_out"),
        (lambda: ood_auroc(Z3, torch.zeros(3, 1)), "scores_out"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
