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
