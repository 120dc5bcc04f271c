"""The GP baseline against a direct pyro.contrib.gp fit and against scikit-learn's GP posterior."""

from __future__ import annotations

import re

import pyro
import pyro.contrib.gp as gp
import pytest
import torch

from ebm.bayes import GPRegressor
from ebm.data import x_sin_x

STEPS = 60


def direct_pyro_fit(x, y, steps):
    """What pyro's GP tutorial does, with module-local parameters so the test leaves no trace."""
    with pyro.settings.context(module_local_params=True):
        kernel = gp.kernels.RBF(1, variance=torch.tensor(1.0), lengthscale=torch.tensor(1.0))
        model = gp.models.GPRegression(
            x, y.squeeze(1), kernel, noise=torch.tensor(1.0), jitter=1e-6
        )
        gp.util.train(model, num_steps=steps)  # Adam(lr=0.01) on the negative marginal likelihood
    return model


@pytest.fixture(scope="module")
def data():
    return x_sin_x(generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def fitted(data):
    store_before = dict(pyro.get_param_store().items())
    other_data = x_sin_x(generator=torch.Generator().manual_seed(5))
    other = GPRegressor(n_steps=STEPS).fit(*other_data)  # fitted first: must not leak
    ours = GPRegressor(n_steps=STEPS).fit(*data)
    return ours, other, store_before


def test_matches_a_direct_pyro_contrib_gp_fit(data, fitted):
    ours, other, _ = fitted
    ref = direct_pyro_fit(*data, STEPS)
    torch.testing.assert_close(
        ours.lengthscale_, ref.kernel.lengthscale.detach(), rtol=1e-4, atol=0
    )
    torch.testing.assert_close(ours.variance_, ref.kernel.variance.detach(), rtol=1e-4, atol=0)
    torch.testing.assert_close(ours.noise_, ref.noise.detach(), rtol=1e-4, atol=0)
    xs = torch.linspace(-15, 15, 31)
    pred = ours.predict(xs)
    with torch.no_grad(), pyro.settings.context(module_local_params=True):
        mean, var = ref(xs.view(-1, 1), full_cov=False, noiseless=False)
    torch.testing.assert_close(pred.mean.squeeze(1), mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pred.var.squeeze(1), var, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(other.lengthscale_, ours.lengthscale_)  # no shared parameters


def test_leaves_pyros_global_param_store_alone(fitted):
    _, _, store_before = fitted
    assert dict(pyro.get_param_store().items()).keys() == store_before.keys()


def test_posterior_matches_scikit_learn_at_the_fitted_hyperparameters(data, fitted):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    ours = fitted[0]
    x, y = data
    kernel = ConstantKernel(ours.variance_.item(), "fixed") * RBF(ours.lengthscale_.item(), "fixed")
    noise = ours.noise_.item() + 1e-6  # pyro adds its jitter to the noise on the diagonal
    ref = GaussianProcessRegressor(kernel, alpha=noise, optimizer=None).fit(
        x.double().numpy(), y.squeeze(1).double().numpy()
    )
    xs = torch.linspace(-15, 15, 31).view(-1, 1)
    mean, std = ref.predict(xs.double().numpy(), return_std=True)
    pred = ours.predict(xs, noiseless=True)
    torch.testing.assert_close(
        pred.mean.squeeze(1).double(), torch.from_numpy(mean), rtol=1e-3, atol=1e-3
    )
    torch.testing.assert_close(
        pred.var.squeeze(1).double(), torch.from_numpy(std**2), rtol=1e-3, atol=1e-3
    )
    noisy = ours.predict(xs)
    torch.testing.assert_close(noisy.var - pred.var, torch.full_like(pred.var, ours.noise_.item()))


def test_closed_form_marginal_likelihood_gradient_matches_autograd_through_pyro():
    """The loss both optimisers use (closed-form ∂/∂K) equals Pyro's −log p(y) and has the
    gradient autograd finds through Pyro's Cholesky, for every hyper-parameter."""
    from ebm.bayes.gp import _local_params, _negative_log_marginal

    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 2, generator=g, dtype=torch.float64) * 4
    y = x.sin().sum(1) + 0.1 * torch.randn(40, generator=g, dtype=torch.float64)
    model = GPRegressor(lengthscale=0.7, variance=1.3, noise=0.2, n_steps=0).fit(x, y).model_
    ours = _negative_log_marginal(model)
    ours_grads = torch.autograd.grad(ours, list(model.parameters()))
    with _local_params():
        ref = pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    assert len(ours_grads) == 3
    for a, b in zip(ours_grads, ref_grads):
        assert b.abs().max() > 1e-3  # a gradient that could be wrong
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_lbfgs_reaches_scikit_learns_type_ii_maximum_likelihood():
    """optimizer="lbfgs" maximises the same marginal likelihood as scikit-learn's L-BFGS-B on
    the log hyper-parameters (kernel σ²·RBF(ℓ) + σₙ², our jitter as its alpha): the same optimum,
    and a log marginal likelihood at least as high."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    g = torch.Generator().manual_seed(3)
    x = torch.rand(60, 1, generator=g, dtype=torch.float64) * 6
    y = torch.sin(2 * x[:, 0]) + 0.2 * torch.randn(60, generator=g, dtype=torch.float64)
    ours = GPRegressor(optimizer="lbfgs", n_steps=200, device="cpu").fit(x, y)
    kernel = ConstantKernel(1.0, (1e-5, 1e5)) * RBF(1.0, (1e-5, 1e5)) + WhiteKernel(1.0)
    ref = GaussianProcessRegressor(kernel, alpha=1e-6).fit(x.numpy(), y.numpy())
    params = ref.kernel_.get_params()
    expected = [params["k1__k1__constant_value"], params["k1__k2__length_scale"]]
    got = [ours.variance_.item(), ours.lengthscale_.item()]
    assert got == pytest.approx(expected, rel=1e-3)
    assert ours.noise_.item() == pytest.approx(params["k2__noise_level"], rel=1e-3)
    assert 0 < ours.n_iter_ <= 200
    assert float(ours.log_marginal_likelihood()) >= ref.log_marginal_likelihood_value_ - 1e-6


def test_bad_input():
    with pytest.raises(ValueError, match="lengthscale"):
        GPRegressor(lengthscale=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        GPRegressor(n_steps=-1)
    with pytest.raises(ValueError, match="not fitted"):
        GPRegressor().predict(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="y must"):
        GPRegressor(n_steps=0).fit(torch.zeros(5, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="x must"):
        GPRegressor(n_steps=0).fit(torch.zeros(5, 1, 1), torch.zeros(5))


# ---- the input convention (issue 12) --------------------------------------------------------


def _closed_form_posterior(x, y, xs, lengthscale=1.0, variance=1.0, noise=1.0, jitter=1e-6):
    """GP posterior mean and variance of y at xs, by hand (float64 numpy)."""
    import numpy as np

    def k(a, b):
        return variance * np.exp(-((a[:, None, 0] - b[None, :, 0]) ** 2) / (2 * lengthscale**2))

    gram = k(x, x) + (noise + jitter) * np.eye(len(x))
    cross = k(x, xs)
    mean = cross.T @ np.linalg.solve(gram, y)
    var = variance - np.einsum("ij,ij->j", cross, np.linalg.solve(gram, cross)) + noise
    return mean, var


def test_float64_data_give_a_float64_gp_and_integers_are_promoted():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64).view(-1, 1)
    y = torch.sin(3 * x).squeeze(1)
    xs = torch.tensor([[-1.5], [0.25], [3.0]], dtype=torch.float64)
    mean, var = _closed_form_posterior(x.numpy(), y.numpy(), xs.numpy())
    pred = GPRegressor(n_steps=0).fit(x, y).predict(xs)
    assert pred.mean.dtype == torch.float64
    torch.testing.assert_close(pred.mean.squeeze(1), torch.from_numpy(mean), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pred.var.squeeze(1), torch.from_numpy(var), rtol=1e-9, atol=1e-9)
    # integer data and list queries: the default float dtype, the same posterior
    xi, yi = torch.arange(-3, 4).view(-1, 1), torch.tensor([0, 1, 0, 2, 1, 0, 1])
    mean, var = _closed_form_posterior(xi.double().numpy(), yi.double().numpy(), xs.numpy())
    pred = GPRegressor(n_steps=0).fit(xi.tolist(), yi.numpy()).predict(xs.tolist())
    assert pred.mean.dtype == torch.get_default_dtype()
    torch.testing.assert_close(
        pred.mean.squeeze(1).double(), torch.from_numpy(mean), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        pred.var.squeeze(1).double(), torch.from_numpy(var), atol=1e-5, rtol=0
    )


X5, Y5 = torch.linspace(0, 1, 5).view(-1, 1), torch.zeros(5)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: GPRegressor(noise=float("nan")), "noise"),
        (lambda: GPRegressor(variance=float("inf")), "variance"),
        (lambda: GPRegressor(lr=True), "lr"),
        (lambda: GPRegressor(jitter="small"), "jitter"),
        (lambda: GPRegressor(n_steps=2.5), "n_steps"),
        (lambda: GPRegressor(device="tpu"), "device"),
        (lambda: GPRegressor(optimizer="sgd"), "optimizer"),
        (lambda: GPRegressor(n_steps=0).fit(X5 * float("nan"), Y5), "x"),
        (lambda: GPRegressor(n_steps=0).fit(X5, Y5 + float("inf")), "y"),
        (lambda: GPRegressor(n_steps=0).fit(torch.zeros(0, 1), torch.zeros(0)), "x"),
        (lambda: GPRegressor(n_steps=0).fit(X5, "y"), "y"),
        (lambda: GPRegressor(n_steps=0).fit(X5, Y5).predict(torch.zeros(3, 2)), "x"),
        (lambda: GPRegressor(n_steps=0).fit(X5, Y5).predict([[float("nan")]]), "x"),
        (lambda: GPRegressor(n_steps=0).fit(X5, Y5).predict(X5, noiseless="yes"), "noiseless"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_singular_kernel_matrix_gets_advice_not_a_cholesky_error(optimizer):
    # twenty copies of one input with almost no noise or jitter: K + σ²I is singular
    gp = GPRegressor(noise=1e-8, jitter=1e-12, n_steps=30, optimizer=optimizer)
    y = torch.randn(20, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="raise `jitter` or `noise`"):
        gp.fit(torch.zeros(20, 1), y)


X20 = torch.linspace(0, 1, 20, dtype=torch.float64).view(-1, 1)
SINE = torch.sin(6 * X20[:, 0])  # root mean square ~0.7


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
@pytest.mark.parametrize("scale", [1e20, 1e6, 1e-6])
def test_y_far_from_the_initial_scale_is_refused_naming_y(optimizer, scale):
    """y ~ 1e20 used to fail in the Trainer ("non-finite loss") or in a Cholesky ("the kernel
    matrix of x ..."), and y ~ 1e6 or 1e-6 fitted with Adam returned a variance or mean far off."""
    gp = GPRegressor(n_steps=5, optimizer=optimizer, device="cpu")
    rms = re.escape(f"{scale * float(SINE.square().mean().sqrt()):.3g}")
    with pytest.raises(
        ValueError, match=rf"^y must have a root mean square .*got .*{rms}.*pass normalize_y=True"
    ):
        gp.fit(X20, scale * SINE)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_the_advised_scaling_gives_the_standardised_fit_scaled(optimizer):
    """The remedy the error names: variance, noise and jitter times s² fit s·y as the unit-scale
    fit, with the mean times s and the variances times s² (type-II ML is scale-equivariant)."""
    s = 1e20
    kw = dict(lengthscale=0.3, n_steps=30, optimizer=optimizer, device="cpu")
    unit = GPRegressor(**kw).fit(X20, SINE).predict(X20)
    big = GPRegressor(variance=s**2, noise=s**2, jitter=1e-6 * s**2, **kw).fit(X20, s * SINE)
    big = big.predict(X20)
    torch.testing.assert_close(big.mean / s, unit.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(big.var / s**2, unit.var, rtol=1e-4, atol=0)


def test_the_scale_check_is_for_fitting_only():
    """n_steps=0 conditions the GP on y with the hyper-parameters given: nothing to reach, so
    any finite scale is taken (the posterior mean is linear in y), as is an all-zero y."""
    unit = GPRegressor(n_steps=0).fit(X20, SINE).predict(X20).mean
    torch.testing.assert_close(
        GPRegressor(n_steps=0).fit(X20, 1e20 * SINE).predict(X20).mean, 1e20 * unit
    )
    zero = GPRegressor(n_steps=5, device="cpu").fit(X20, torch.zeros(20)).predict(X20)
    assert torch.equal(zero.mean, torch.zeros(20, 1, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_kernel_matrix_that_is_not_positive_definite_is_explained(dtype):
    """Repeated rows of x with (almost) no noise and no jitter: K is singular from the start. The
    error says what to raise, and suggests float64 only to a float32 fit."""
    x = torch.zeros(6, 1, dtype=dtype)
    y = torch.linspace(-1, 1, 6, dtype=dtype)
    model = GPRegressor(n_steps=5, optimizer="lbfgs", noise=1e-30, jitter=1e-30, device="cpu")
    with pytest.raises(ValueError, match="not positive definite.*raise `jitter` or `noise`") as err:
        model.fit(x, y)
    assert ("float64" in str(err.value)) == (dtype == torch.float32)
