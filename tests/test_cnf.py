"""CNF log-likelihoods against closed forms: zero field = N(0, I), linear field = a Gaussian."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch.distributions import MultivariateNormal

from ebm.inference.ode import StepBudgetExceeded
from ebm.models import CNF

A = torch.tensor([[0.3, -0.5, 0.0], [0.4, -0.2, 0.1], [0.0, 0.2, 0.5]], dtype=torch.float64)


class _LinearCNF(CNF):
    """dy/dt = A y: y(1) = e^A z, so p = N(0, e^A e^Aᵀ) and log p(y) = log N(e^−A y) − tr A."""

    def velocity(self, t, y):
        return y @ A.to(y).T


def _points(n=64, d=3, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_zero_field_gives_the_standard_normal_log_density():
    cnf = CNF(2).double()
    torch.nn.init.zeros_(cnf.field[-1].weight)
    torch.nn.init.zeros_(cnf.field[-1].bias)
    y = 2 * _points(d=2)
    expected = MultivariateNormal(torch.zeros(2, dtype=y.dtype), torch.eye(2, dtype=y.dtype))
    torch.testing.assert_close(cnf.log_prob(y), expected.log_prob(y), atol=1e-10, rtol=0)
    torch.testing.assert_close(cnf.energy(y), -expected.log_prob(y), atol=1e-10, rtol=0)


def test_linear_field_matches_the_gaussian_closed_form():
    cnf = _LinearCNF(3, divergence="exact", rtol=1e-9, atol=1e-9).double()
    e_a = torch.linalg.matrix_exp(A)
    target = MultivariateNormal(torch.zeros(3, dtype=A.dtype), e_a @ e_a.T)
    y = _points()
    with torch.no_grad():
        torch.testing.assert_close(cnf.log_prob(y), target.log_prob(y), atol=1e-6, rtol=1e-6)
    samples = cnf.sample(20000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(torch.cov(samples.T), e_a @ e_a.T, atol=0.06, rtol=0.03)


def test_hutchinson_divergence_agrees_with_exact_in_expectation():
    torch.manual_seed(0)  # the MLP's initial weights; tests own the global RNG
    # a fixed grid: both estimate the same discretised integral, Hutchinson without bias
    cnf = CNF(3, hidden=(16,), divergence="exact", method="rk4", step_size=0.125).double()
    y = _points(n=4)
    with torch.no_grad():
        exact = cnf.log_prob(y)
        cnf.divergence = "hutchinson"
        g = torch.Generator().manual_seed(2)
        estimates = torch.stack([cnf.log_prob(y, generator=g) for _ in range(100)])
    assert (estimates.std(0) > 1e-4).all()  # really a stochastic estimate
    stderr = estimates.std(0) / 100**0.5
    assert ((estimates.mean(0) - exact).abs() < 4 * stderr + 1e-6).all()


def test_log_prob_is_differentiable_for_training():
    cnf = CNF(2, hidden=(8,), method="rk4", step_size=0.25)
    loss = cnf.training_step(torch.randn(16, 2))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in cnf.parameters())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="divergence"):
        CNF(2, divergence="trace")
    with pytest.raises(ValueError, match="y must"):
        CNF(2).log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="n must"):
        CNF(2).sample(0)


# ---- the input convention and the step budget (issue 12) ---------------------------------------


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"rtol": -1}, "rtol"),
        ({"atol": float("nan")}, "atol"),
        ({"method": "leapfrog"}, "method"),
        ({"max_num_steps": 0}, "max_num_steps"),
        ({"step_size": 0.1}, "step_size"),  # dopri5 is adaptive
        ({"method": "rk4", "step_size": float("inf")}, "step_size"),
        ({"dim": 2.5}, "dim"),
        ({"dim": 0}, "dim"),
        ({"lr": float("nan")}, "lr"),
    ],
)
def test_cnf_rejects_bad_settings_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CNF(**{"dim": 2, **kwargs})


def test_cnf_with_a_tiny_fixed_step_raises_before_solving():
    cnf = CNF(2, hidden=(4,), method="rk4", step_size=1e-30)
    y = torch.zeros(3, 2)
    start = time.perf_counter()
    with pytest.raises(StepBudgetExceeded, match="max_num_steps"):
        cnf.sample(3)
    with pytest.raises(StepBudgetExceeded, match="max_num_steps"):
        cnf.log_prob(y)
    assert time.perf_counter() - start < 1.0


def test_cnf_adaptive_budget_is_enforced():
    cnf = CNF(2, hidden=(4,), rtol=1e-12, atol=1e-12, max_num_steps=3)
    with pytest.raises(StepBudgetExceeded, match="max_num_steps=3"):
        cnf.sample(3, generator=torch.Generator().manual_seed(0))


def test_cnf_data_is_validated_and_cast_to_the_parameters_dtype():
    cnf = CNF(2, hidden=(4,), method="rk4", step_size=0.25)
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = cnf.log_prob(y)
        from_double = cnf.log_prob(y.double())
        from_list = cnf.energy(y.tolist())
    assert from_double.dtype == torch.float32
    torch.testing.assert_close(from_double, reference)
    torch.testing.assert_close(from_list, -reference)
    with torch.no_grad():
        from_int = cnf.log_prob(torch.tensor([[1, 0], [0, 2]]))
        torch.testing.assert_close(from_int, cnf.log_prob(torch.tensor([[1.0, 0.0], [0.0, 2.0]])))
    bad = y.clone()
    bad[1, 0] = float("nan")
    for method in (cnf.log_prob, cnf.energy, cnf):
        with pytest.raises(ValueError, match="y contains"):
            method(bad)
    with pytest.raises(ValueError, match="y must"):
        cnf.log_prob(torch.zeros(0, 2))
    for n in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n must"):
            cnf.sample(n)


def test_hidden_widths_are_validated_by_name():
    with pytest.raises(ValueError, match=r"hidden\[0\]"):
        CNF(2, hidden=(2.5,))
    with pytest.raises(ValueError, match="hidden"):
        CNF(2, hidden="64")
    assert len(CNF(2, hidden=()).field) == 1  # no hidden layer: one affine map


def test_velocity_accepts_array_likes_and_promotes_integers():
    cnf = CNF(2, hidden=(4,))
    y, t = torch.tensor([[1, -2], [0, 3]]), torch.tensor(0.5)
    ref = cnf.velocity(t, y.float())
    # the field at (y, t) by hand: the MLP on the concatenated [y, t]
    torch.testing.assert_close(ref, cnf.field(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 0.5]])))
    for alt in (y, y.numpy(), y.tolist(), y.double()):
        got = cnf.velocity(t, alt)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref)
    torch.testing.assert_close(cnf.velocity(0.5, y), ref)  # a number for t
    torch.testing.assert_close(cnf.velocity(t, y != 0), cnf.velocity(t, (y != 0).float()))


def test_hutchinson_probe_comes_from_the_generator():
    cnf = CNF(3, hidden=(8,), divergence="hutchinson", method="rk4", step_size=0.5)
    y = _points(5).float()
    state = torch.get_rng_state()
    a = cnf.energy(y, generator=torch.Generator().manual_seed(1))
    b = cnf.energy(y, generator=torch.Generator().manual_seed(1))
    c = cnf.log_prob(y, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, -c)


# ---- flow matching (issue 15) -------------------------------------------------------------------
M1, S1 = 1.5, 0.5  # the data N(M1, S1² I) of the Gaussian cases


class _GaussianVelocity(torch.nn.Module):
    """The marginal velocity of the path x_t = (1 − (1 − σ)t)x₀ + t x₁ from N(0, I) to
    N(m, s² I): x_t is Gaussian with V = (1 − (1 − σ)t)² + t²s², u = x₁ − (1 − σ)x₀ and
    E[u | x_t] = m + (t s² − (1 − σ)(1 − (1 − σ)t)) (x_t − t m) / V. Input [x, t] (B, D + 1) as
    the CNF's field takes it."""

    def __init__(self, shift=0.0, sigma=0.0):
        super().__init__()
        self.shift, self.sigma = shift, sigma
        self.anchor = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))  # gives a dtype

    def forward(self, xt):
        x, t = xt[:, :-1], xt[:, -1:]
        a = 1 - (1 - self.sigma) * t  # x₀'s coefficient
        var = a**2 + t**2 * S1**2
        cov = t * S1**2 - (1 - self.sigma) * a
        return M1 + cov * (x - t * M1) / var + self.shift


def _fm_cnf(dim, shift=0.0, sigma=0.0, **kwargs):
    cnf = CNF(
        dim, hidden=(4,), objective="flow_matching", sigma_min=sigma, rtol=1e-8, atol=1e-8, **kwargs
    ).double()
    cnf.field = _GaussianVelocity(shift, sigma)
    return cnf


def test_flow_matching_loss_at_the_true_field_is_its_closed_form_minimum():
    from scipy.integrate import quad

    dim, n = 2, 200_000
    x1 = M1 + S1 * torch.randn(
        n, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    # E‖u − E[u | x_t]‖² = D ∫₀¹ s² / ((1 − t)² + t² s²) dt (the conditional variance of u)
    minimum = dim * quad(lambda t: S1**2 / ((1 - t) ** 2 + t**2 * S1**2), 0, 1)[0]
    losses = {}
    for shift in (0.0, 0.1, -0.1):
        cnf = _fm_cnf(dim, shift)
        with torch.no_grad():
            losses[shift] = float(cnf.flow_matching_loss(x1, torch.Generator().manual_seed(1)))
    assert abs(losses[0.0] - minimum) < 0.01 * minimum  # MC error ≈ 0.3 %
    # a constant shift c adds exactly D c² (same draws: the cross term has mean zero)
    for shift in (0.1, -0.1):
        assert losses[shift] > losses[0.0]
        assert abs(losses[shift] - losses[0.0] - dim * shift**2) < 0.2 * dim * shift**2


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_the_true_flow_matching_field_gives_the_data_log_likelihood_through_log_prob(sigma):
    """The time convention: flow matching's t = 1 is the data end that log_prob integrates from;
    sigma_min = σ ends at the data blurred by N(0, σ²I): N(m, (s² + σ²) I) here."""
    cnf = _fm_cnf(2, sigma=sigma)
    y = torch.randn(16, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sd = (S1**2 + sigma**2) ** 0.5
    target = MultivariateNormal(torch.full((2,), M1).double(), sd**2 * torch.eye(2).double())
    with torch.no_grad():
        torch.testing.assert_close(cnf.log_prob(y), target.log_prob(y), atol=1e-5, rtol=0)
        samples = cnf.sample(20_000, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(samples.mean(0), torch.full((2,), M1).double(), atol=0.02, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.full((2,), sd).double(), atol=0.02, rtol=0)


def test_ot_pairing_is_the_brute_force_minimum():
    from itertools import permutations

    from ebm.models.cnf import _ot_permutation

    g = torch.Generator().manual_seed(5)
    for b in (1, 2, 5, 6):
        for dim in (1, 3):
            x0, x1 = torch.randn(b, dim, generator=g), torch.randn(b, dim, generator=g)
            perm = _ot_permutation(x0, x1)
            assert sorted(perm.tolist()) == list(range(b))  # a permutation

            def cost(p, x0=x0, x1=x1):
                return float((x0[list(p)] - x1).pow(2).sum())

            best = min(cost(p) for p in permutations(range(b)))
            assert cost(perm.tolist()) == pytest.approx(best, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("pairing,batch", [("independent", 128), ("ot", 64)])  # OT: O(B³) a step
def test_short_flow_matching_training_learns_a_gaussian_density(pairing, batch):
    """E_data[log N(y; m, s²) − log p_θ(y)] = KL(data ‖ model) >= 0 must come out near 0."""
    torch.manual_seed(0)  # the MLP's initial weights; tests own the global RNG
    cnf = CNF(1, hidden=(32, 32), objective="flow_matching", pairing=pairing, lr=3e-3).double()
    g = torch.Generator().manual_seed(6)
    y = M1 + S1 * torch.randn(400, 1, generator=g, dtype=torch.float64)  # held out
    target = torch.distributions.Normal(M1, S1).log_prob(y[:, 0])

    def kl():
        with torch.no_grad():
            return float((target - cnf.log_prob(y)).mean())

    assert kl() > 0.5  # untrained: far off
    opt = cnf.configure_optimizers()
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / 600)
    for _ in range(600):
        y1 = M1 + S1 * torch.randn(batch, 1, generator=g, dtype=torch.float64)
        opt.zero_grad()
        cnf.flow_matching_loss(y1, g).backward()
        opt.step()
        decay.step()
    assert -0.01 < kl() < 0.035  # >= 0 up to the 400-point Monte Carlo error; seeds: 0.01-0.02


def test_training_step_follows_the_objective():
    y = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    ml = CNF(2, hidden=(8,), method="rk4", step_size=0.25)
    assert ml.objective == "likelihood"  # the default is unchanged
    fm = CNF(2, hidden=(8,), method="rk4", step_size=0.25, objective="flow_matching")
    fm.load_state_dict(ml.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ml.training_step(y), -ml.log_prob(y).mean())
        state = torch.get_rng_state()
        expected = fm.flow_matching_loss(y, torch.Generator().manual_seed(0))
        torch.testing.assert_close(fm.validation_step([y])["flow_matching"], expected)
        assert torch.equal(torch.get_rng_state(), state)  # validation draws from its own generator
        assert "nll" in ml.validation_step(y)
    loss = fm.training_step([y])
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fm.parameters())


def _reference_flow_matching_loss(cnf, x1, x0, t):
    """The documented loss through the public velocity, as written before the fast path."""
    shrink = 1.0 - cnf.sigma_min
    x_t = (1.0 - shrink * t) * x0 + t * x1
    return (cnf.velocity(t, x_t) - (x1 - shrink * x0)).pow(2).sum(1).mean()


@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
@pytest.mark.parametrize("pairing", ["independent", "ot"])
def test_flow_matching_fast_path_gives_the_same_loss_and_gradients(sigma_min, pairing):
    from ebm.models.cnf import _ot_permutation

    y = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    cnf = CNF(2, hidden=(16, 16), objective="flow_matching", pairing=pairing, sigma_min=sigma_min)
    got = cnf.flow_matching_loss(y, torch.Generator().manual_seed(1))
    got_grads = torch.autograd.grad(got, list(cnf.parameters()))
    g = torch.Generator().manual_seed(1)  # the same draws, in the documented order: x₀ then t
    x0, t = torch.randn(32, 2, generator=g), torch.rand(32, 1, generator=g)
    if pairing == "ot":
        x0 = x0[_ot_permutation(x0, y)]
    ref = _reference_flow_matching_loss(cnf, y, x0, t)
    assert torch.equal(got, ref)  # bit for bit: the same operations on the same draws
    for a, b in zip(got_grads, torch.autograd.grad(ref, list(cnf.parameters()))):
        assert torch.equal(a, b)
    state = torch.get_rng_state()  # training_step draws from the global RNG, in the same order
    step = cnf.training_step([y])
    torch.set_rng_state(state)
    x0, t = torch.randn(32, 2), torch.rand(32, 1)
    if pairing == "ot":
        x0 = x0[_ot_permutation(x0, y)]
    assert torch.equal(step, _reference_flow_matching_loss(cnf, y, x0, t))


def test_training_step_converts_and_checks_its_batch():
    """A batch already in the model's dtype skips the conversion; any other is converted first."""
    cnf = CNF(2, hidden=(8,), objective="flow_matching")
    y = (4 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0))).round()
    state = torch.get_rng_state()
    ref = cnf.training_step(y)
    for other in (y.double(), y.long(), [y.long()], [y.double().numpy()]):
        torch.set_rng_state(state)  # the same draws
        got = cnf.training_step(other)
        assert got.dtype == torch.float32
        assert torch.equal(got, ref)  # integral values: every conversion is exact
    for bad in (
        torch.zeros(4, 3),
        torch.zeros(4),
        torch.zeros(4, 2).double()[:, :1],
    ):
        with pytest.raises(ValueError, match=r"^y must"):
            cnf.training_step(bad)
    with pytest.raises(ValueError, match=r"^batch must hold at least one sample.*\(0, 2\)"):
        cnf.training_step(torch.zeros(0, 2))  # refused by batch_data, before any work


def test_flow_matching_uses_an_overridden_velocity():
    class Shifted(CNF):
        def velocity(self, t, y):
            return super().velocity(t, y) + 1.0

    y = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    plain = CNF(2, hidden=(8,), objective="flow_matching")
    shifted = Shifted(2, hidden=(8,), objective="flow_matching")
    shifted.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(2)
    x0, t = torch.randn(16, 2, generator=g), torch.rand(16, 1, generator=g)
    got = shifted.flow_matching_loss(y, torch.Generator().manual_seed(2))
    torch.testing.assert_close(got, _reference_flow_matching_loss(shifted, y, x0, t))
    assert not torch.allclose(got, plain.flow_matching_loss(y, torch.Generator().manual_seed(2)))


def test_ot_pairing_matches_scipy_on_the_data_by_base_cost():
    """The solver sees the base draws as rows; the pairing is scipy's on the other orientation."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    from ebm.models.cnf import _ot_permutation

    g = torch.Generator().manual_seed(3)
    for b in (7, 64):
        x0, x1 = torch.randn(b, 2, generator=g), 2 * torch.rand(b, 2, generator=g)
        cost = torch.cdist(x1, x0).pow(2).double().numpy()  # cost[j, i] = ‖x1[j] − x0[i]‖²
        rows, cols = linear_sum_assignment(cost)
        expected = np.empty(b, dtype=np.int64)
        expected[rows] = cols
        assert _ot_permutation(x0, x1).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"objective": "ml"}, "objective"),
        ({"objective": None}, "objective"),
        ({"pairing": "exact"}, "pairing"),
        ({"sigma_min": 1.0}, "sigma_min"),
        ({"sigma_min": -0.1}, "sigma_min"),
        ({"sigma_min": float("nan")}, "sigma_min"),
    ],
)
def test_flow_matching_settings_are_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CNF(2, **kwargs)


def test_flow_matching_loss_validates_its_inputs():
    cnf = CNF(2, hidden=(4,), objective="flow_matching")
    with pytest.raises(ValueError, match="y contains"):
        cnf.flow_matching_loss(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="y must"):
        cnf.flow_matching_loss(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="generator"):
        cnf.flow_matching_loss(torch.zeros(4, 2), generator=3)
    got = cnf.flow_matching_loss([[1, 0], [0, 2]], torch.Generator().manual_seed(0))
    ref = cnf.flow_matching_loss(torch.tensor([[1.0, 0], [0, 2]]), torch.Generator().manual_seed(0))
    torch.testing.assert_close(got, ref)


# ---- the forward-mode divergence of the default MLP field (issue 18) ---------------------------
@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.SiLU, torch.nn.Sigmoid])
@pytest.mark.parametrize("hidden", [(), (16,), (12, 8, 6)])
@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_chain_divergence_equals_autograd_and_keeps_its_gradients(activation, hidden, divergence):
    from ebm.models.cnf import (
        _chain_divergence,
        _mlp_chain,
        exact_divergence,
        hutchinson_divergence,
    )

    torch.manual_seed(0)  # the MLP's initial weights
    cnf = CNF(5, hidden=hidden, activation=activation).double()
    chain = _mlp_chain(cnf.field)
    assert chain is not None
    y = _points(n=7, d=5).requires_grad_(True)
    t = torch.tensor(0.3, dtype=torch.float64)
    v = _points(n=7, d=5, seed=4) if divergence == "hutchinson" else None
    f_ref = cnf.velocity(t, y)
    div_ref = (
        exact_divergence(f_ref, y, create_graph=True)
        if v is None
        else hutchinson_divergence(f_ref, y, v, create_graph=True)
    )
    x = torch.cat([y, t.expand(7, 1)], dim=1)
    f, div = _chain_divergence(*chain, x, 5, v)
    torch.testing.assert_close(f, f_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(div, div_ref, rtol=1e-10, atol=1e-12)
    weights = torch.arange(1.0, 8.0, dtype=torch.float64)
    params = [y, *cnf.parameters()]
    grads_ref = torch.autograd.grad((div_ref * weights).sum(), params, allow_unused=True)
    grads = torch.autograd.grad((div * weights).sum(), params, allow_unused=True)
    for g, g_ref in zip(grads, grads_ref):
        if g_ref is None:  # a bias the divergence does not depend on
            assert g is None or torch.count_nonzero(g) == 0
        else:
            torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)


def test_fields_the_chain_divergence_does_not_know_go_through_autograd():
    from ebm.models.cnf import _mlp_chain

    assert _mlp_chain(CNF(2, activation=torch.nn.Softplus).field) is None  # no tangent written
    hooked = CNF(2)
    hooked.field.register_forward_hook(lambda *args: None)
    assert _mlp_chain(hooked.field) is None  # a hook on the field must see every evaluation
    assert _mlp_chain(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())) is None
    # an overridden velocity is integrated as written (the closed-form test above relies on it)
    torch.manual_seed(0)
    plain = CNF(3, hidden=(8,), method="rk4", step_size=0.25).double()
    y = _points(n=5)
    fast = plain.log_prob(y)
    plain.field.register_forward_hook(lambda *args: None)  # takes the autograd path
    torch.testing.assert_close(fast, plain.log_prob(y), rtol=1e-12, atol=1e-12)


def test_ot_pairing_survives_large_data_and_lets_nan_propagate():
    model = CNF(2, hidden=(8,), objective="flow_matching", pairing="ot")
    g = torch.Generator().manual_seed(0)
    # finite data whose float32 squared distances overflow: the cost is built in float64
    assert torch.isinf(model.flow_matching_loss(torch.full((4, 2), 1e20), generator=g))
    # a forward pass does not read values: NaN data give a NaN loss, not a scipy error
    assert torch.isnan(model.training_step(torch.full((4, 2), float("nan"))))


def test_training_step_takes_numpy_batches_and_names_an_empty_one():
    model = CNF(2, hidden=(8,), objective="flow_matching")
    y = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()  # the step draws x₀ and t from the global RNG: the same draws
    from_tensor = model.training_step(y)
    with torch.random.fork_rng():
        torch.set_rng_state(state)
        from_numpy = model.training_step(y.numpy())
    assert torch.equal(from_numpy, from_tensor)
    with pytest.raises(ValueError, match="batch must be"):
        model.training_step([])


class _ZeroVelocity(CNF):
    def velocity(self, t, y):
        return torch.zeros_like(y)


class _NumpyVelocity(CNF):
    def velocity(self, t, y):
        import numpy as np

        return torch.from_numpy(np.sin(y.detach().numpy()))


class _WrongShapeVelocity(CNF):
    def velocity(self, t, y):
        return y[:, :1]


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_a_velocity_constant_in_y_has_divergence_zero(divergence):
    """f ≡ 0 (no autograd path to y): z = y and log p(y) = log N(y; 0, I) (was autograd's
    "element 0 of tensors does not require grad")."""
    cnf = _ZeroVelocity(2, hidden=(4,), divergence=divergence, rtol=1e-3, atol=1e-3)
    y = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    expected = MultivariateNormal(torch.zeros(2), torch.eye(2)).log_prob(y)
    torch.testing.assert_close(cnf.log_prob(y, generator=torch.Generator()), expected)


def test_a_velocity_autograd_cannot_differentiate_is_refused_by_name():
    y = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    with pytest.raises(ValueError, match=r"^velocity must be differentiable in its input x"):
        _NumpyVelocity(2, hidden=(4,), rtol=1e-3, atol=1e-3).log_prob(y)
    with pytest.raises(ValueError, match=r"^velocity must return a tensor of its input's shape"):
        _WrongShapeVelocity(2, hidden=(4,), rtol=1e-3, atol=1e-3).log_prob(y)


def test_the_public_divergences_refuse_an_output_with_no_path_to_y():
    from ebm.models.cnf import exact_divergence, hutchinson_divergence

    y = torch.zeros(3, 2, requires_grad=True)
    f = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"^f must have been computed from y"):
        exact_divergence(f, y, create_graph=False)
    with pytest.raises(ValueError, match=r"^f must have been computed from y"):
        hutchinson_divergence(f, y, torch.ones(3, 2), create_graph=False)
    torch.testing.assert_close(exact_divergence(0 * y, y, False), torch.zeros(3))


@pytest.mark.parametrize(
    "settings",
    [dict(rtol=1e-2, atol=1e-2), dict(method="rk4", step_size=0.25)],
    ids=["dopri5", "rk4"],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_batch_gives_a_nan_loss_with_every_method(settings, bad):
    """The training step is a forward pass: NaN in, NaN out, as Diffusion/EBM/VAE give it (the
    Trainer's data check and nan_policy deal with it). dopri5's step size collapsed on the state
    and raised NonFiniteODEError before; it now gives NaN for NaN or inf (whatever a completed
    solve would have made of inf is unknown); rk4 propagates as torch does (+inf for an inf
    point: density 0)."""
    cnf = CNF(2, hidden=(4,), **settings)
    y = torch.zeros(4, 2)
    y[1, 0] = bad
    loss = cnf.training_step(y)
    assert loss.ndim == 0 and not torch.isfinite(loss)
    if math.isnan(bad) or "rtol" in settings:
        assert torch.isnan(loss)
    loss.backward()  # connected to the parameters, as a propagated NaN is
    assert any(not torch.isfinite(p.grad).all() for p in cnf.parameters())
    assert not torch.isfinite(cnf.validation_step([y])["nll"])
    assert not torch.isfinite(cnf.training_step(torch.full((4, 2), bad)))


def test_a_finite_batch_on_a_broken_field_still_raises():
    """Only a non-finite batch turns the solver's breakdown into NaN: a field that breaks down
    on finite data is an error, not a believable loss."""
    from ebm.inference.ode import NonFiniteODEError

    cnf = CNF(2, hidden=(4,), rtol=1e-2, atol=1e-2)
    with torch.no_grad():
        cnf.field[-1].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteODEError):
        cnf.training_step(torch.zeros(4, 2))
