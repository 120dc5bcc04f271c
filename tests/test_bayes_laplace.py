"""Last-layer Laplace: closed forms (Bayesian linear regression is exact), KFAC's exact cases,
the evidence maximum, the MC predictive against quadrature, and laplace-torch when installed."""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from torch import nn
from torch.nn.utils import vector_to_parameters
from torch.utils.data import DataLoader, TensorDataset

from ebm.bayes import LastLayerLaplace, mean_probs

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _set(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Deterministic weights from a private generator."""
    n = sum(p.numel() for p in module.parameters())
    vector_to_parameters(torch.randn(n, generator=_gen(seed), dtype=D) * scale, module.parameters())
    return module


def _mlp(d_in: int, width: int, k: int, bias: bool = True, seed: int = 0) -> nn.Module:
    net = nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, k, bias=bias))
    return _set(net.to(D), seed, scale=0.7)


# ---- Bayesian linear regression: the Laplace approximation is exact ---------------------------


def _blr(n=30, d=3, sigma=0.4, delta=2.5, seed=0):
    g = _gen(seed)
    x = torch.randn(n, d, generator=g, dtype=D)
    y = (
        x @ torch.tensor([1.0, -2.0, 0.5], dtype=D)[:d]
        + 0.3
        + sigma * torch.randn(n, generator=g, dtype=D)
    )
    phi = torch.cat([x, torch.ones(n, 1, dtype=D)], 1).numpy()
    return x, y, phi, sigma, delta


def _map_weights(phi, y, sigma, delta):
    precision = phi.T @ phi / sigma**2 + delta * np.eye(phi.shape[1])
    return np.linalg.solve(precision, phi.T @ y.numpy() / sigma**2), np.linalg.inv(precision)


def _exact_evidence(phi, y, sigma, delta):
    cov = sigma**2 * np.eye(len(y)) + phi @ phi.T / delta
    return stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y.numpy())


def _linear_at(theta: np.ndarray, d: int) -> nn.Linear:
    layer = nn.Linear(d, 1).to(D)
    vector_to_parameters(torch.from_numpy(theta.copy()), layer.parameters())  # W (1, d), then b
    return layer


def test_bayesian_linear_regression_posterior_predictive_and_evidence_are_exact():
    x, y, phi, sigma, delta = _blr()
    theta, cov = _map_weights(phi, y, sigma, delta)
    la = LastLayerLaplace(_linear_at(theta, 3), "regression", "full", delta, sigma).fit(x, y)
    np.testing.assert_allclose(la.posterior_covariance().numpy(), cov, rtol=1e-10)
    np.testing.assert_allclose(la.mean_.numpy(), theta, rtol=1e-12)
    assert la.log_marginal_likelihood() == pytest.approx(
        _exact_evidence(phi, y, sigma, delta), rel=1e-10
    )
    xq = torch.randn(7, 3, generator=_gen(5), dtype=D)
    phiq = np.c_[xq.numpy(), np.ones(7)]
    pred = la.predict(xq)
    np.testing.assert_allclose(pred.mean[:, 0].numpy(), phiq @ theta, rtol=1e-10)
    np.testing.assert_allclose(
        pred.var[:, 0].numpy(), np.einsum("ni,ij,nj->n", phiq, cov, phiq) + sigma**2, rtol=1e-10
    )
    assert pred.samples is None


def test_multi_output_regression_evidence_is_the_sum_over_outputs():
    x, y1, phi, sigma, delta = _blr(seed=1)
    y2 = -0.5 * y1 + 0.1 * torch.randn(len(y1), generator=_gen(9), dtype=D)
    th1, _ = _map_weights(phi, y1, sigma, delta)
    th2, _ = _map_weights(phi, y2, sigma, delta)
    layer = nn.Linear(3, 2).to(D)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.stack([th1[:3], th2[:3]])))
        layer.bias.copy_(torch.tensor([th1[3], th2[3]], dtype=D))
    y = torch.stack([y1, y2], 1)
    expected = _exact_evidence(phi, y1, sigma, delta) + _exact_evidence(phi, y2, sigma, delta)
    la = LastLayerLaplace(layer, "regression", "full", delta, sigma).fit(x, y)
    assert la.log_marginal_likelihood() == pytest.approx(expected, rel=1e-10)


def test_marglik_finds_the_argmax_of_the_closed_form_evidence():
    x, y, phi, sigma, _ = _blr(n=40, seed=2)
    # type-II maximum likelihood of the exact evidence, by scipy in log δ
    best = optimize.minimize_scalar(
        lambda t: -_exact_evidence(phi, y, sigma, math.exp(t)),
        bounds=(-8, 8),
        method="bounded",
        options={"xatol": 1e-10},
    )
    delta_star = math.exp(best.x)
    theta, _ = _map_weights(phi, y, sigma, delta_star)  # the net trained with that prior
    la = LastLayerLaplace(
        _linear_at(theta, 3), "regression", prior_precision=1.0, sigma_noise=sigma
    )
    la.fit(x, y).optimize_prior_precision()
    assert la.prior_precision == pytest.approx(delta_star, rel=1e-6)
    # and it maximises the Laplace evidence at fixed θ*: MacKay's fixed point δ = γ / ‖θ*‖²
    mu = np.linalg.eigvalsh(phi.T @ phi / sigma**2)
    gamma = (mu / (mu + la.prior_precision)).sum()
    assert la.prior_precision == pytest.approx(gamma / (theta**2).sum(), rel=1e-9)
    grid = np.exp(np.linspace(-6, 6, 241))
    assert la.log_marginal_likelihood() >= max(la.log_marginal_likelihood(g) for g in grid)


# ---- KFAC's exact cases -----------------------------------------------------------------------


def test_kron_equals_full_for_regression_without_bias():
    # Λₙ = I for every point: B ⊗ A = N·I ⊗ (1/N) Σ φφᵀ is the GGN itself
    net = _mlp(2, 5, 3, bias=False)
    x = torch.randn(25, 2, generator=_gen(1), dtype=D)
    y = torch.randn(25, 3, generator=_gen(2), dtype=D)
    full = LastLayerLaplace(net, "regression", "full", 0.8, 0.5).fit(x, y)
    kron = LastLayerLaplace(net, "regression", "kron", 0.8, 0.5).fit(x, y)
    torch.testing.assert_close(kron.posterior_precision(), full.posterior_precision())
    assert kron.log_marginal_likelihood() == pytest.approx(full.log_marginal_likelihood())
    xq = torch.randn(6, 2, generator=_gen(3), dtype=D)
    torch.testing.assert_close(kron.predict(xq).var, full.predict(xq).var)


def test_kron_blocks_are_the_full_ggn_blocks_for_regression():
    # with a bias, KFAC keeps the weight and bias blocks exactly and drops their coupling
    net = _mlp(2, 4, 1)
    x = torch.randn(20, 2, generator=_gen(4), dtype=D)
    y = torch.randn(20, 1, generator=_gen(5), dtype=D)
    full = LastLayerLaplace(net, "regression", "full").fit(x, y).posterior_precision()
    kron = LastLayerLaplace(net, "regression", "kron").fit(x, y).posterior_precision()
    torch.testing.assert_close(kron[:4, :4], full[:4, :4])
    torch.testing.assert_close(kron[4:, 4:], full[4:, 4:])
    assert torch.all(kron[:4, 4:] == 0) and not torch.all(full[:4, 4:] == 0)


def test_kron_equals_full_for_a_rank_one_classification_ggn():
    # one training point: B ⊗ A = Λ ⊗ φφᵀ exactly
    net = _mlp(3, 4, 3, bias=False)
    x = torch.randn(1, 3, generator=_gen(6), dtype=D)
    y = torch.tensor([2])
    full = LastLayerLaplace(net, "classification", "full", 0.3).fit(x, y)
    kron = LastLayerLaplace(net, "classification", "kron", 0.3).fit(x, y)
    torch.testing.assert_close(kron.posterior_covariance(), full.posterior_covariance())
    xq = torch.randn(5, 3, generator=_gen(7), dtype=D)
    torch.testing.assert_close(kron.predict(xq).mean, full.predict(xq).mean)


def test_classification_ggn_is_the_softmax_hessian():
    # the full GGN of the last layer is the Hessian of the summed cross-entropy in its weights
    net = _mlp(2, 3, 3, seed=3)
    x = torch.randn(9, 2, generator=_gen(8), dtype=D)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2])
    la = LastLayerLaplace(net, "classification", "full", 1.0).fit(x, y)
    last = net[2]
    features = net[1](net[0](x)).detach()

    def loss(theta):
        w, b = theta[:9].view(3, 3), theta[9:]
        return nn.functional.cross_entropy(features @ w.T + b, y, reduction="sum")

    hessian = torch.autograd.functional.hessian(loss, la.mean_.clone())
    eye = torch.eye(12, dtype=D)
    torch.testing.assert_close(la.posterior_precision(), hessian + eye)
    assert la.log_marginal_likelihood(2.0) == pytest.approx(
        -float(loss(la.mean_))
        - 0.5 * (torch.logdet(hessian + 2 * eye).item() - 12 * math.log(2.0))
        - float(la.mean_.square().sum()),
        rel=1e-12,
    )
    assert last.weight.grad is None  # fitting does not touch gradients


# ---- the predictive ---------------------------------------------------------------------------


def test_mc_predictive_matches_quadrature_for_two_classes():
    # K = 2: softmax depends on d = f₀ − f₁ ~ N(m, v); E[sigmoid(d)] by Gauss-Hermite
    net = _mlp(2, 4, 2, seed=4)
    x = torch.randn(30, 2, generator=_gen(9), dtype=D)
    y = (x[:, 0] > 0).long()
    la = LastLayerLaplace(net, "classification", "full", 0.5).fit(x, y)
    xq = torch.randn(4, 2, generator=_gen(10), dtype=D) * 2
    mean, cov = la._functional(xq)
    m = (mean[:, 0] - mean[:, 1]).numpy()
    v = (cov[:, 0, 0] + cov[:, 1, 1] - 2 * cov[:, 0, 1]).numpy()
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    exact = (
        weights / weights.sum() / (1 + np.exp(-(m[:, None] + np.sqrt(v)[:, None] * nodes)))
    ).sum(1)
    n = 20_000
    pred = la.predict(xq, link_approx="mc", n_samples=n, generator=_gen(11))
    assert np.all(np.abs(pred.mean[:, 0].numpy() - exact) < 5 * 0.5 / math.sqrt(n))
    torch.testing.assert_close(pred.var, pred.mean * (1 - pred.mean))
    samples = la.functional_samples(xq, n_samples=n, generator=_gen(11))
    torch.testing.assert_close(mean_probs(samples), pred.mean)  # the same draws


def test_probit_with_no_uncertainty_is_the_softmax():
    net = _mlp(2, 4, 3)
    x = torch.randn(10, 2, generator=_gen(12), dtype=D)
    la = LastLayerLaplace(net, "classification", prior_precision=1e12).fit(
        x, torch.zeros(10).long()
    )
    torch.testing.assert_close(la.predict(x).mean, net(x).softmax(-1), rtol=1e-9, atol=1e-10)


def test_loader_and_tensors_give_one_fit_and_data_is_cast():
    net = _mlp(2, 5, 3)
    x = torch.randn(23, 2, generator=_gen(13), dtype=D)
    y = torch.randint(0, 3, (23,), generator=_gen(14))
    for hessian in ("kron", "full"):
        whole = LastLayerLaplace(net, "classification", hessian).fit(x, y)
        batched = LastLayerLaplace(net, "classification", hessian).fit(
            DataLoader(TensorDataset(x, y), batch_size=5)
        )
        torch.testing.assert_close(batched.posterior_covariance(), whole.posterior_covariance())
        assert batched.log_marginal_likelihood() == pytest.approx(whole.log_marginal_likelihood())
    net32 = _mlp(2, 5, 3).float()
    la = LastLayerLaplace(net32, "classification", "full").fit(x.numpy(), y.tolist())
    assert la.predict(x).mean.dtype == torch.float32
    torch.testing.assert_close(
        la.posterior_covariance().double(), whole.posterior_covariance(), rtol=1e-4, atol=1e-5
    )


def test_the_last_linear_is_found_and_checked():
    net = _mlp(2, 4, 3)
    auto = LastLayerLaplace(net, "classification")
    assert auto.last_layer is net[2]

    class Squeezed(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _mlp(2, 4, 1)

        def forward(self, x):
            return self.body(x).squeeze(-1)

    with pytest.raises(ValueError, match="model's output must be last_layer's output"):
        LastLayerLaplace(Squeezed(), "regression").fit(torch.zeros(3, 2, dtype=D), torch.zeros(3))
    with pytest.raises(ValueError, match="last_layer must be a submodule of model"):
        LastLayerLaplace(net, last_layer=nn.Linear(4, 3))
    with pytest.raises(ValueError, match="model must contain an nn.Linear"):
        LastLayerLaplace(nn.Tanh())


def test_refits_are_required_after_the_layer_changes():
    net = _mlp(2, 4, 3)
    x, y = torch.randn(8, 2, generator=_gen(15), dtype=D), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    la = LastLayerLaplace(net, "classification")
    with pytest.raises(ValueError, match="not fitted"):
        la.predict(x)
    la.fit(x, y)
    with torch.no_grad():
        net[2].bias.add_(1.0)
    with pytest.raises(ValueError, match="call fit again"):
        la.predict(x)
    assert net.training  # the modes were restored
    with pytest.raises(ValueError, match="sigma_noise must be 1 for classification"):
        LastLayerLaplace(net, "classification", sigma_noise=2.0)


# ---- laplace-torch ----------------------------------------------------------------------------


@contextlib.contextmanager
def _peer_context():
    """laplace-torch's full GGN multiplies by ``torch.eye`` in the default dtype: float64 for an
    exact comparison, restored afterwards; its advisory warnings are silenced."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(D)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("likelihood", ["regression", "classification"])
@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_agrees_with_laplace_torch(likelihood, hessian):
    laplace = pytest.importorskip("laplace")
    k = 2 if likelihood == "regression" else 3
    net = _mlp(2, 6, k, seed=5)
    g = _gen(16)
    x = torch.randn(40, 2, generator=g, dtype=D)
    if likelihood == "regression":
        y, sigma = torch.randn(40, k, generator=g, dtype=D), 0.7
    else:
        y, sigma = torch.randint(0, k, (40,), generator=g), 1.0
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    with _peer_context():
        peer = laplace.Laplace(
            net,
            likelihood,
            subset_of_weights="last_layer",
            hessian_structure=hessian,
            sigma_noise=sigma,
            prior_precision=2.0,
        )
        peer.fit(loader)
    ours = LastLayerLaplace(net, likelihood, hessian, 2.0, sigma).fit(loader)
    peer_cov = (
        peer.posterior_covariance
        if hessian == "full"
        else peer.posterior_precision.to_matrix(exponent=-1)
    )
    torch.testing.assert_close(ours.posterior_covariance(), peer_cov, rtol=1e-10, atol=1e-12)
    assert ours.log_marginal_likelihood() == pytest.approx(
        peer.log_marginal_likelihood().item(), rel=1e-10
    )
    xq = torch.randn(6, 2, generator=_gen(17), dtype=D)
    if likelihood == "regression":
        with _peer_context():
            f_mu, f_var = peer(xq, pred_type="glm")
        pred = ours.predict(xq)
        torch.testing.assert_close(pred.mean, f_mu, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(pred.var, f_var.diagonal(dim1=1, dim2=2) + sigma**2)
    else:
        with _peer_context():
            probs = peer(xq, pred_type="glm", link_approx="probit")
        torch.testing.assert_close(ours.predict(xq).mean, probs, rtol=1e-10, atol=1e-12)
    with _peer_context():
        peer.optimize_prior_precision(
            pred_type="glm", method="marglik", n_steps=400, lr=0.1, prior_structure="scalar"
        )
    ours.optimize_prior_precision()
    assert ours.prior_precision == pytest.approx(peer.prior_precision.item(), rel=1e-6)
