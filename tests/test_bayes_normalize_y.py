"""normalize_y on the three Bayesian regressors (GPRegressor, SVIRegressor, DeepEnsemble): scale
equivariance (fitting c·y + b predicts c·mean + b and |c|·std), agreement with scikit-learn's
GaussianProcessRegressor(normalize_y=True), the log-likelihood's Jacobian, and the refusal of a
y whose scale the un-normalised fit cannot reach."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from ebm.bayes import DeepEnsemble, GPRegressor, SVIRegressor
from ebm.bayes._target import root_mean_square, standardize

X = torch.linspace(-1, 1, 16).view(-1, 1)
Y = torch.sin(3 * X)  # (16, 1), root mean square ~0.7
X64, Y64 = X.double(), Y.double()
# (c, b): fit c·y + b; b of the order of c, so that c·y + b rounds (float32) no worse than y
SCALES = [(1e6, 3e6), (1e-3, 5e-3), (-2.0, 0.5)]


def _tiny_net():
    return nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))


def _gp(**kw):
    return GPRegressor(lengthscale=0.5, n_steps=20, device="cpu", normalize_y=True, **kw)


def _svi(**kw):
    kw = dict(sizes=(1, 8, 1), max_epochs=20, n_samples=16, seed=0, device="cpu") | kw
    return SVIRegressor(normalize_y=True, **kw)


def _ensemble(**kw):
    kw = dict(n_members=2, optimizer="adam", lr=0.02, max_epochs=20, device="cpu") | kw
    return DeepEnsemble(_tiny_net, normalize_y=True, **kw)


def _predict(model, x):
    if isinstance(model, SVIRegressor):
        return model.predict(x, generator=torch.Generator().manual_seed(0))
    return model.predict(x)


def test_standardize_matches_numpy_and_survives_extreme_scales():
    y = torch.tensor([[1.0, 5.0, -2.0], [3.0, 5.0, 7.0], [2.0, 5.0, 1.0]])
    z, mean, std = standardize(y)
    np.testing.assert_allclose(mean.numpy(), y.numpy().mean(0), rtol=1e-6)
    expected_std = y.numpy().std(0)  # numpy's ddof=0, as scikit-learn
    expected_std[1] = 1.0  # a constant column's zero std is 1 (scikit-learn's rule)
    np.testing.assert_allclose(std.numpy(), expected_std, rtol=1e-6)
    torch.testing.assert_close(z * std + mean, y)
    assert torch.equal(z[:, 1], torch.zeros(3))
    tiny = 1e-30  # float32: squares underflow to 0
    z_tiny, _, std_tiny = standardize(tiny * y)
    torch.testing.assert_close(z_tiny, z, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(std_tiny[[0, 2]] / tiny, std[[0, 2]], rtol=1e-5, atol=0)
    for scale in (1e30, 1e-30):  # squares would overflow / underflow in float32
        rms = root_mean_square(scale * y) / scale
        torch.testing.assert_close(rms, y.square().mean(0).sqrt(), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match=r"^y has a std of .*beyond the range of torch.float32"):
        standardize(1e20 * y)  # a variance of 1e40: no predicted variance would be finite
    with pytest.raises(ValueError, match=r"torch.float32: rescale y, or fit in float64$"):
        standardize(1e20 * y)
    # already float64: float64 is no way out, so the advice is only to rescale
    with pytest.raises(ValueError, match=r"beyond the range of torch.float64: rescale y$"):
        standardize(1e160 * y.double())


@pytest.mark.parametrize("make", [_gp, _svi, _ensemble], ids=["gp", "svi", "ensemble"])
@pytest.mark.parametrize(("c", "b"), SCALES)
def test_normalize_y_is_scale_equivariant(make, c, b):
    """The same seed on c·y + b predicts c·mean + b and |c|·std (samples c·s + b): the fit only
    sees the standardised target, so only the mapping back to y's units can break this. For
    c < 0 the standardised target is that of −y: the GP's posterior is odd in it, a net's fit
    (from one initialisation) is not, so the nets' reference is their fit of sign(c)·y."""
    x, y = (X64, Y64) if make is _gp else (X, Y)
    unit = _predict(make().fit(x, y if make is _gp or c > 0 else -y), x)
    if make is not _gp and c < 0:
        c, b, y = -c, b, -y  # c·y + b = |c|·(−y) + b
    scaled_model = make(**({"noise_var": 0.0} if make is _ensemble else {}))
    scaled = _predict(scaled_model.fit(x, c * y + b), x)
    tol = dict(rtol=1e-9, atol=1e-9) if make is _gp else dict(rtol=2e-4, atol=2e-4)
    torch.testing.assert_close((scaled.mean - b) / c, unit.mean, **tol)
    torch.testing.assert_close(scaled.std / abs(c), unit.std, **tol)
    if unit.samples is not None:
        torch.testing.assert_close((scaled.samples - b) / c, unit.samples, **tol)
    torch.testing.assert_close(scaled_model.y_std_, abs(c) * make().fit(x, y).y_std_, **tol)
    torch.testing.assert_close(scaled_model.y_mean_, c * make().fit(x, y).y_mean_ + b, **tol)


def test_gp_normalize_y_matches_scikit_learn_at_fixed_hyperparameters():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    y = 1e3 * Y64[:, 0] + 40.0
    ours = GPRegressor(lengthscale=0.4, variance=1.3, noise=0.05, n_steps=0, normalize_y=True).fit(
        X64, y
    )
    kernel = ConstantKernel(1.3, "fixed") * RBF(0.4, "fixed")
    ref = GaussianProcessRegressor(kernel, alpha=0.05 + 1e-6, optimizer=None, normalize_y=True)
    ref.fit(X64.numpy(), y.numpy())
    xs = torch.linspace(-2, 2, 21, dtype=torch.float64).view(-1, 1)
    mean, std = ref.predict(xs.numpy(), return_std=True)
    pred = ours.predict(xs, noiseless=True)  # scikit-learn's std leaves alpha out
    torch.testing.assert_close(pred.mean[:, 0], torch.from_numpy(mean), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pred.std[:, 0], torch.from_numpy(std), rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(ours.y_mean_, torch.tensor(ref._y_train_mean, dtype=torch.float64))
    torch.testing.assert_close(ours.y_std_, torch.tensor(ref._y_train_std, dtype=torch.float64))


def _sklearn_gp(noise: float, noiseless: bool, alpha_extra: float = 1e-6):
    """scikit-learn's GaussianProcessRegressor(normalize_y=True) with our fixed kernel
    (variance 1, lengthscale 0.5): alpha = noise + jitter leaves the noise out of its std (our
    noiseless=True); a WhiteKernel(noise) term with alpha = jitter puts it in (our default)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0, "fixed") * RBF(0.5, "fixed")
    if noiseless:
        return GaussianProcessRegressor(
            kernel, alpha=noise + alpha_extra, optimizer=None, normalize_y=True
        )
    kernel = kernel + WhiteKernel(noise, "fixed")
    return GaussianProcessRegressor(kernel, alpha=alpha_extra, optimizer=None, normalize_y=True)


@pytest.mark.parametrize("noiseless", [True, False])
@pytest.mark.parametrize("noise", [1e-4, 1e-2, 1.0])
def test_gp_variances_match_scikit_learn_once_jitter_counts_as_noise(noise, noiseless):
    """The conventions that made variances look 0.1-1 % off scikit-learn's (issue 15's walk):
    our ``jitter`` (1e-6) is added to the training diagonal like the noise (Pyro's
    GPRegression), so scikit-learn's equivalent has alpha = noise + jitter (or a WhiteKernel and
    alpha = jitter); without it the variances differ by about jitter/noise near the data
    (1 % at noise 1e-4). In float64 the two then agree to rounding."""
    y = 1e3 * Y64[:, 0] + 40.0
    xs = torch.linspace(-2, 2, 41, dtype=torch.float64).view(-1, 1)
    ours = GPRegressor(lengthscale=0.5, variance=1.0, noise=noise, n_steps=0, normalize_y=True)
    pred = ours.fit(X64, y).predict(xs, noiseless=noiseless)
    ref = _sklearn_gp(noise, noiseless).fit(X64.numpy(), y.numpy())
    mean, std = ref.predict(xs.numpy(), return_std=True)
    torch.testing.assert_close(pred.mean[:, 0], torch.from_numpy(mean), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pred.var[:, 0], torch.from_numpy(std**2), rtol=1e-8, atol=0)
    # scikit-learn with the jitter left out: a different model, visibly so at small noise
    ref = _sklearn_gp(noise, noiseless, alpha_extra=1e-10).fit(X64.numpy(), y.numpy())
    _, std = ref.predict(xs.numpy(), return_std=True)
    gap = float(((pred.var[:, 0] - torch.from_numpy(std**2)) / pred.var[:, 0]).abs().max())
    assert gap > 0.1 * 1e-6 / noise


@pytest.mark.parametrize("noise", [1e-4, 1e-3, 1e-2])
def test_gp_float32_variances_are_within_float32_rounding_times_the_condition_number(noise):
    """A float32 GP (float32 data) computes in float32: its predicted variances differ from the
    float64 ones (scikit-learn always computes in float64) by up to about cond(K)·eps_float32
    relative, K = k(X, X) + (noise + jitter) I: 4e-4 at noise 1e-3 on these 16 points. A
    rounding error, not a convention: the float64 fit agrees to 1e-8 above."""
    y = 1e3 * Y64[:, 0] + 40.0
    xs = torch.linspace(-2, 2, 81, dtype=torch.float64).view(-1, 1)

    def make():
        return GPRegressor(lengthscale=0.5, variance=1.0, noise=noise, n_steps=0, normalize_y=True)

    pred32 = make().fit(X64.float(), y.float()).predict(xs.float(), noiseless=True)
    pred64 = make().fit(X64.float().double(), y.float().double()).predict(xs, noiseless=True)
    assert pred32.var.dtype == torch.float32
    d2 = (X64 - X64.T).square()
    gram = torch.exp(-d2 / (2 * 0.5**2)) + (noise + 1e-6) * torch.eye(16, dtype=torch.float64)
    bound = float(torch.linalg.cond(gram)) * torch.finfo(torch.float32).eps
    error = float(((pred32.var.double() - pred64.var) / pred64.var).abs().max())
    assert error <= bound
    assert error > 1e-6  # really float32: more than the float64 agreement above


def test_gp_log_marginal_likelihood_is_in_ys_units():
    """With normalize_y, log p(y) is the Gaussian density of y itself: N(y; mean·1, std²·K)."""
    from scipy.stats import multivariate_normal

    y = 50.0 * Y64[:, 0] - 7.0
    model = GPRegressor(lengthscale=0.4, variance=1.3, noise=0.05, n_steps=0, normalize_y=True).fit(
        X64, y
    )
    d2 = (X64 - X64.T).square().numpy()
    gram = 1.3 * np.exp(-d2 / (2 * 0.4**2)) + (0.05 + 1e-6) * np.eye(16)
    mu, sd = float(model.y_mean_), float(model.y_std_)
    expected = multivariate_normal(np.full(16, mu), sd**2 * gram).logpdf(y.numpy())
    assert float(model.log_marginal_likelihood()) == pytest.approx(expected, rel=1e-9)
    plain = GPRegressor(lengthscale=0.4, variance=1.3, noise=0.05, n_steps=0).fit(X64, y)
    expected = multivariate_normal(np.zeros(16), gram).logpdf(y.numpy())
    assert float(plain.log_marginal_likelihood()) == pytest.approx(expected, rel=1e-9)


def test_gp_normalize_y_on_a_constant_y_predicts_the_constant():
    model = GPRegressor(n_steps=5, device="cpu", normalize_y=True).fit(X64, torch.full((16,), 7.0))
    assert float(model.y_std_) == 1.0  # a zero std is taken as 1
    torch.testing.assert_close(
        model.predict(X64).mean, torch.full((16, 1), 7.0, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "fit",
    [
        lambda y: GPRegressor(n_steps=2, device="cpu").fit(X64, y[:, 0].double()),
        lambda y: SVIRegressor(sizes=(1, 4, 1), max_epochs=2, device="cpu").fit(X, y),
        lambda y: DeepEnsemble(_tiny_net, n_members=2, max_epochs=2, device="cpu").fit(X, y),
    ],
    ids=["gp", "svi", "ensemble"],
)
@pytest.mark.parametrize("scale", [1e20, 1e6, 1e-6])
def test_a_y_out_of_scale_is_refused_naming_y_and_normalize_y(fit, scale):
    """y ~ 1e6 used to give a confidently wrong fit (SVI at rms 7e5: relative error 1.0 with a
    std 3e-5 of y's scale), y ~ 1e20 the Trainer's NonFiniteLossError, which does not name y."""
    rms = f"{float(root_mean_square(scale * Y)):.3g}"
    with pytest.raises(ValueError, match=r"^y must have a root mean square") as err:
        fit(scale * Y)
    assert rms in str(err.value) and "normalize_y=True" in str(err.value)


@pytest.mark.parametrize("make", [_gp, _svi, _ensemble], ids=["gp", "svi", "ensemble"])
def test_normalize_y_fits_a_huge_y_that_is_refused_without_it(make):
    """1e20 in float64 (the GP); 1e15 in float32, whose variances (1e30) float32 holds."""
    x, y, s = (X64, Y64, 1e20) if make is _gp else (X, Y, 1e15)
    pred = _predict(make().fit(x, s * y), x)
    assert torch.isfinite(pred.mean).all() and torch.isfinite(pred.var).all()
    assert bool((pred.std > 0).all())
    unit = _predict(make().fit(x, y), x)
    torch.testing.assert_close(pred.mean / s, unit.mean, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make", [_svi, _ensemble], ids=["svi", "ensemble"])
def test_a_float32_y_whose_variance_overflows_is_refused_naming_y(make):
    with pytest.raises(ValueError, match=r"^y has a std of .*float64"):
        make().fit(X, 1e20 * Y)


@pytest.mark.parametrize("make", [_gp, _svi, _ensemble], ids=["gp", "svi", "ensemble"])
def test_normalize_y_is_a_parameter_get_set_and_cloned(make):
    model = make()
    assert model.get_params()["normalize_y"] is True
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "y_std_")
    off = clone(model).set_params(normalize_y=False)
    assert off.get_params()["normalize_y"] is False
    x, y = (X64, 3.0 * Y64 + 1.0) if make is _gp else (X, 3.0 * Y + 1.0)
    assert float(off.fit(x, y).y_std_.flatten()[0]) == 1.0  # fitted as given
    assert float(off.set_params(normalize_y=True).fit(x, y).y_std_.flatten()[0]) > 1.0
    with pytest.raises(ValueError, match=r"\bnormalize_y\b"):
        type(model)(**(model.get_params(deep=False) | {"normalize_y": "yes"}))
    with pytest.raises(ValueError, match=r"\bnormalize_y\b"):
        clone(model).set_params(normalize_y=1).fit(x, y)


def test_ensemble_normalize_y_needs_mse():
    with pytest.raises(ValueError, match=r"\bnormalize_y\b.*loss='mse'"):
        DeepEnsemble(_tiny_net, loss="cross_entropy", normalize_y=True)


def test_gp_normalize_y_with_a_prior_far_from_unit_scale_names_variance_and_noise():
    with pytest.raises(ValueError, match=r"^variance and noise must .*normalize_y=True"):
        GPRegressor(variance=1e6, n_steps=2, device="cpu", normalize_y=True).fit(X64, Y64)
    assert math.isfinite(float(_gp().fit(X64, Y64).log_marginal_likelihood()))


@pytest.mark.parametrize(
    ("make", "low", "high"),
    [
        (lambda: SVIRegressor(sizes=(1, 4, 1), max_epochs=1, device="cpu"), 0.01, 100.0),
        (lambda: DeepEnsemble(_tiny_net, n_members=2, max_epochs=1, device="cpu"), 0.01, 300.0),
    ],
    ids=["svi", "ensemble"],
)
def test_the_refusal_edges_are_the_documented_ones(make, low, high):
    """y = ±r has a root mean square of exactly r: 1 % inside each edge fits, 1 % outside is
    refused; an all-zero y has nothing to scale and fits."""
    signs = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0).view(-1, 1)
    for r in (1.01 * low, 0.99 * high):
        make().fit(X, r * signs)
    for r in (0.99 * low, 1.01 * high):
        with pytest.raises(ValueError, match=r"^y must have a root mean square"):
            make().fit(X, r * signs)
    make().fit(X, torch.zeros(16, 1))
