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
