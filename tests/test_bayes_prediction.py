"""The Prediction type: moments from samples, intervals, covariance, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from ebm.bayes import Prediction


def test_from_samples_moments_match_numpy():
    s = torch.randn(50, 7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pred = Prediction.from_samples(s, noise_var=0.5)
    np.testing.assert_allclose(pred.mean.numpy(), s.numpy().mean(0))
    np.testing.assert_allclose(pred.var.numpy(), s.numpy().var(0) + 0.5)  # numpy.var, as eq. 21.2
    np.testing.assert_allclose(pred.std.numpy(), np.sqrt(s.numpy().var(0) + 0.5))
    assert pred.n_samples == 50
    np.testing.assert_allclose(
        pred.covariance().numpy(), np.stack([np.cov(s[:, b].T, bias=True) for b in range(7)])
    )


def test_interval_uses_gaussian_quantiles():
    pred = Prediction(mean=torch.tensor([1.0]), var=torch.tensor([4.0]))
    lo, hi = pred.interval(0.9)
    lo_ref, hi_ref = norm.interval(0.9, loc=1.0, scale=2.0)
    assert lo.item() == pytest.approx(lo_ref, rel=1e-5)
    assert hi.item() == pytest.approx(hi_ref, rel=1e-5)


def test_validation():
    with pytest.raises(ValueError, match="var"):
        Prediction(mean=torch.zeros(3), var=torch.ones(4))
    with pytest.raises(ValueError, match="samples"):
        Prediction(mean=torch.zeros(3), var=torch.ones(3), samples=torch.zeros(5, 4))
    with pytest.raises(ValueError, match="level"):
        Prediction(mean=torch.zeros(3), var=torch.ones(3)).interval(1.5)
    with pytest.raises(ValueError, match="covariance"):
        Prediction(mean=torch.zeros(3), var=torch.ones(3)).covariance()


# ---- the input convention (issue 12) --------------------------------------------------------


def test_array_likes_and_integers_are_promoted():
    s = torch.randint(-3, 4, (6, 5), generator=torch.Generator().manual_seed(1))
    pred = Prediction.from_samples(s.tolist(), noise_var=1)
    ref = Prediction.from_samples(s.float(), noise_var=1.0)
    assert pred.mean.dtype == torch.get_default_dtype()
    torch.testing.assert_close(pred.mean, ref.mean)
    torch.testing.assert_close(pred.var, torch.from_numpy(s.numpy().var(0) + 1.0).float())
    direct = Prediction(mean=[1, 2], var=np.array([0.5, 0.0]))
    assert direct.mean.dtype == torch.get_default_dtype() and direct.var.dtype == torch.float64


def test_per_element_noise_var():
    s = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    pred = Prediction.from_samples(s, noise_var=[0.1, 0.2, 0.3])
    torch.testing.assert_close(pred.var, s.var(0, correction=0) + torch.tensor([0.1, 0.2, 0.3]))
    assert pred.var.dtype == s.dtype  # the list's float64 does not widen the prediction


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=-1.0), "noise_var"),
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=float("nan")), "noise_var"),
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=float("inf")), "noise_var"),
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=True), "noise_var"),
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var="0.1"), "noise_var"),
        (lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=[-0.1, 0.1]), "noise_var"),
        (
            lambda: Prediction.from_samples(torch.zeros(3, 2), noise_var=[0.1, 0.1, 0.1]),
            "noise_var",
        ),
        (lambda: Prediction.from_samples(torch.full((3, 2), float("nan"))), "samples"),
        (lambda: Prediction.from_samples(torch.zeros(0, 2)), "samples"),
        (lambda: Prediction.from_samples(torch.zeros(3)), "samples"),
        (lambda: Prediction(mean=torch.zeros(2), var=torch.tensor([1.0, -1.0])), "var"),
        (lambda: Prediction(mean=torch.tensor([0.0, float("inf")]), var=torch.ones(2)), "mean"),
        (lambda: Prediction(mean="a", var=torch.ones(2)), "mean"),
        (
            lambda: Prediction(torch.zeros(2), torch.ones(2), torch.full((4, 2), float("nan"))),
            "samples",
        ),
        (lambda: Prediction(torch.zeros(2), torch.ones(2), torch.zeros(4, 1, 2)), "samples"),
        (lambda: Prediction(torch.zeros(2), torch.ones(2)).interval(float("nan")), "level"),
        (lambda: Prediction(torch.zeros(2), torch.ones(2)).interval(True), "level"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
