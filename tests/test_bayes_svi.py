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
    model = SVIRegressor(sizes=(1, 1), lr=0.05, max_epochs=150, n_samples=400, seed=0, device="cpu")
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
        SVIRegressor(sizes=(2, 1), max_epochs=1).fit(torch.zeros(4, 1), torch.zeros(4, 1))


def test_float64_integer_and_list_data_are_cast_to_the_models_dtype():
    # float64 data used to fail inside the float32 network
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(16, 1, generator=gen)
    y = 2.0 * x + 0.1 * torch.randn(16, 1, generator=gen)
    queries = torch.tensor([[0.0], [1.0]])

    def run(xd, yd, q):
        model = SVIRegressor(sizes=(1, 1), max_epochs=3, n_samples=5, seed=0, device="cpu")
        pred = model.fit(xd, yd).predict(q)  # predict draws from the global RNG: shapes only
        assert pred.samples.shape == (5, 2, 1)
        assert pred.samples.dtype == torch.get_default_dtype()
        return dict(model.guide_.named_parameters())

    ref = run(x, y, queries)  # the fit is seeded: equal data give equal variational parameters
    for xd, yd, q in (
        (x.double(), y.double(), queries.double()),
        (x.tolist(), y.numpy(), [[0], [1]]),
    ):
        got = run(xd, yd, q)
        assert got.keys() == ref.keys()
        for key in ref:
            assert got[key].dtype == torch.get_default_dtype()
            torch.testing.assert_close(got[key], ref[key])
    # integer data: the same as the same values in float
    xi, yi = (x * 4).round(), (y * 4).round()
    ref = run(xi, yi, queries)
    got = run(xi.long(), yi.int(), queries.long())
    for key in ref:
        torch.testing.assert_close(got[key], ref[key])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sizes": "12"}, "sizes"),
        ({"sizes": (1, 0)}, "sizes"),
        ({"sizes": (1, True)}, "sizes"),
        ({"sizes": 3}, "sizes"),
        ({"activation": None}, "activation"),
        ({"prior_scale": float("nan")}, "prior_scale"),
        ({"lr": float("inf")}, "lr"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"n_samples": 1.0}, "n_samples"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_hyper_parameters_raise_at_construction(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        SVIRegressor(**kwargs)


def test_bad_data_names_the_argument():
    model = SVIRegressor(sizes=(1, 1), max_epochs=1, n_samples=2, seed=0, device="cpu")
    x, y = torch.zeros(4, 1), torch.zeros(4, 1)
    with pytest.raises(ValueError, match=r"\bx\b"):
        model.fit(x + float("nan"), y)
    with pytest.raises(ValueError, match=r"\by\b"):
        model.fit(x, y + float("inf"))
    model.fit(x, y)
    with pytest.raises(ValueError, match=r"\bx\b"):
        model.predict(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\bx\b"):
        model.predict([[float("nan")]])


def test_predict_is_reproducible_with_a_generator_and_leaves_the_global_rng_alone():
    x = torch.linspace(-1, 1, 8)[:, None]
    model = SVIRegressor(sizes=(1, 1), max_epochs=2, n_samples=6, seed=0, device="cpu").fit(
        x, 2 * x
    )
    state = torch.get_rng_state()
    first = model.predict(x, generator=torch.Generator().manual_seed(3)).samples
    again = model.predict(x, generator=torch.Generator().manual_seed(3)).samples
    other = model.predict(x, generator=torch.Generator().manual_seed(4)).samples
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_old_n_epochs_name_still_works_and_warns():
    with pytest.warns(DeprecationWarning, match="'n_epochs' is deprecated.*'max_epochs'"):
        model = SVIRegressor(sizes=(1, 1), n_epochs=7, device="cpu")
    assert model.max_epochs == 7 and model.get_params()["max_epochs"] == 7
