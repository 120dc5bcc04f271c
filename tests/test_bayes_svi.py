"""The variational BNN baseline on Bayesian linear regression, where the answer is known."""

from __future__ import annotations

import pyro
import pytest
import torch

from ebm.bayes import SVIRegressor


def test_bayesian_linear_regression_recovers_the_line_and_widens_away():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, generator=gen) * 2 - 1
    y = 2.0 * x + 0.5 + 0.1 * torch.randn(64, 1, generator=gen)
    keys = set(pyro.get_param_store().keys())
    model = SVIRegressor(sizes=(1, 1), lr=0.05, n_epochs=150, n_samples=400, seed=0, device="cpu")
    rng = torch.get_rng_state()
    model.fit(x, y)
    assert torch.equal(torch.get_rng_state(), rng)  # seeded privately
    assert set(pyro.get_param_store().keys()) == keys  # module-local parameters only
    pred = model.predict(torch.tensor([[0.0], [1.0], [10.0]]))
    assert pred.samples.shape == (400, 3, 1)
    assert pred.mean[0].item() == pytest.approx(0.5, abs=0.1)
    assert pred.mean[1].item() == pytest.approx(2.5, abs=0.15)
    f_std = pred.samples.std(0).squeeze(1)
    assert f_std[2] > 3 * f_std[0]  # slope uncertainty grows with |x|
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_bad_input():
    with pytest.raises(ValueError, match="sizes"):
        SVIRegressor(sizes=(1,))
    with pytest.raises(ValueError, match="activation"):
        SVIRegressor(activation="sigmoid")
    with pytest.raises(ValueError, match="not fitted"):
        SVIRegressor().predict(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="x must"):
        SVIRegressor(sizes=(2, 1), n_epochs=1).fit(torch.zeros(4, 1), torch.zeros(4, 1))
