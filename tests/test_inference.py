"""Tests for ebm.inference: free energy limits, minimisers of analytic energies, flows."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import BananaEnergy, CircleEnergy, GaussianEnergy
from ebm.inference import (
    Minimum,
    exhaustive_search,
    flow,
    free_energy,
    gradient_descent,
    gradient_flow,
    lbfgs,
)

# ---- free_energy ------------------------------------------------------------------------------


def _energies(seed=0, shape=(5, 7), dtype=torch.float64):
    return 3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_free_energy_zero_temperature_is_min():
    E = _energies()
    torch.testing.assert_close(free_energy(E), E.min(-1).values)
    torch.testing.assert_close(free_energy(E, beta=math.inf, dim=0), E.min(0).values)
    torch.testing.assert_close(free_energy(E, beta=1e5), E.min(-1).values, atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_free_energy_high_temperature_is_mean(dtype):
    E = _energies(dtype=dtype)
    torch.testing.assert_close(free_energy(E, beta=1e-9), E.mean(-1), atol=1e-5, rtol=1e-5)
    # first-order correction: F_β ≈ mean − (β/2)·var  (cumulant expansion)
    beta = 1e-3
    expected = E.mean(-1) - beta / 2 * E.var(-1, unbiased=False)
    torch.testing.assert_close(free_energy(E, beta), expected, atol=1e-5, rtol=1e-5)


def test_free_energy_two_point_closed_form():
    a, b = 0.3, 2.0
    E = torch.tensor([a, b], dtype=torch.float64)
    for beta in (0.1, 1.0, 4.0, 50.0):
        expected = -math.log((math.exp(-beta * a) + math.exp(-beta * b)) / 2) / beta
        assert free_energy(E, beta).item() == pytest.approx(expected, rel=1e-12)
    # equal energies: no entropy term at any temperature
    torch.testing.assert_close(free_energy(torch.full((4,), 1.7), beta=0.5), torch.tensor(1.7))


def test_free_energy_is_bounded_and_monotone_in_beta():
    E = _energies(seed=3, shape=(64, 9))
    betas = [1e-3, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0]
    values = torch.stack([free_energy(E, b) for b in betas])
    assert (values[1:] <= values[:-1] + 1e-12).all()
    assert (values >= E.min(-1).values - 1e-12).all() and (values <= E.mean(-1) + 1e-12).all()


def test_free_energy_is_stable_for_huge_energies_and_gives_gibbs_gradient():
    E = torch.tensor([[1e4, 1e4 + 1.0, 1e4 + 50.0]], requires_grad=True)  # float32
    beta = 2.0
    F = free_energy(E, beta)
    assert torch.isfinite(F).all()
    shifted = torch.tensor([0.0, 1.0, 50.0], dtype=torch.float64)
    expected = 1e4 - math.log(torch.exp(-beta * shifted).mean().item()) / beta
    assert F.item() == pytest.approx(expected, rel=1e-6)
    F.sum().backward()
    torch.testing.assert_close(E.grad, torch.softmax(-beta * E.detach(), dim=-1))


def test_free_energy_rejects_bad_input():
    with pytest.raises(ValueError, match="no latent values"):
        free_energy(torch.zeros(3, 0))
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            free_energy(torch.zeros(3, 2), beta=beta)
    with pytest.raises(ValueError, match="E must be a torch.Tensor"):
        free_energy([1.0, 2.0])
    with pytest.raises(ValueError, match="dim"):
        free_energy(torch.zeros(3, 2), dim=2)


# ---- minimisers -------------------------------------------------------------------------------


def test_exhaustive_search_equals_brute_force_argmin():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(6, 3, generator=g)  # 6 problems
    candidates = torch.randn(50, 3, generator=g)  # 50 candidates in R^3

    def energy(c):  # (n, 3) -> (6, n)
        return torch.cdist(targets, c).pow(2)

    brute = torch.cdist(targets, candidates).pow(2)
    for chunk in (None, 7, 1):
        found = exhaustive_search(energy, candidates, chunk_size=chunk)
        assert isinstance(found, Minimum)
        torch.testing.assert_close(found.argmin, candidates[brute.argmin(1)])
        torch.testing.assert_close(found.energy, brute.min(1).values)


def test_exhaustive_search_envelope_gradient():
    # F(θ) = min_j (z_j − θ_b)²: dF/dθ_b = 2(θ_b − z*)
    theta = torch.tensor([0.12, 0.93, -0.43], requires_grad=True)
    grid = torch.linspace(-1, 1, 11)
    found = exhaustive_search(lambda z: (z[None, :] - theta[:, None]).pow(2), grid)
    (grad,) = torch.autograd.grad(found.energy.sum(), theta)
    torch.testing.assert_close(found.argmin, torch.tensor([0.2, 1.0, -0.4]))
    torch.testing.assert_close(grad, 2 * (theta.detach() - found.argmin))
    none = exhaustive_search(lambda z: (z[None, :] - theta[:, None]).pow(2), grid, backprop="none")
    assert not none.energy.requires_grad


def _double_well(v):  # (N, 1) -> (N,): E = (v² − 1)² + 0.3 v, global min near v = −1.04
    return (v[:, 0].pow(2) - 1).pow(2) + 0.3 * v[:, 0]


def _double_well_minima():
    roots = torch.tensor([-1.0353, 0.0752, 0.9601], dtype=torch.float64)  # 4v³ − 4v + 0.3 = 0
    # refine the roots by Newton on the closed-form derivative
    for _ in range(20):
        roots = roots - (4 * roots**3 - 4 * roots + 0.3) / (12 * roots**2 - 4)
    return roots[0].item(), roots[2].item()


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
def test_descent_with_restarts_finds_the_global_minimum(solver):
    global_min, local_min = _double_well_minima()
    run = {
        "gd": lambda init: gradient_descent(_double_well, init, steps=300, lr=0.02),
        "lbfgs": lambda init: lbfgs(_double_well, init),
    }[solver]
    single = run(torch.full((1, 4, 1), 2.0))
    torch.testing.assert_close(single.argmin[:, 0], torch.full((4,), local_min), atol=1e-4, rtol=0)
    starts = torch.tensor([2.0, -2.0, 0.5]).reshape(3, 1, 1).expand(3, 4, 1)
    best = run(starts)
    torch.testing.assert_close(best.argmin[:, 0], torch.full((4,), global_min), atol=1e-4, rtol=0)
    torch.testing.assert_close(best.energy, _double_well(best.argmin), atol=1e-6, rtol=0)


def test_lbfgs_finds_banana_and_gaussian_minimisers():
    g = torch.Generator().manual_seed(2)
    init = 2 * torch.randn(2, 8, 2, generator=g, dtype=torch.float64)
    found = lbfgs(BananaEnergy(a=1.0, b=1.0), init, max_iter=200)
    expected = torch.tensor([0.0, -1.0], dtype=torch.float64).expand(8, 2)
    torch.testing.assert_close(found.argmin, expected, atol=1e-5, rtol=0)
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    mean = torch.tensor([0.5, -1.5], dtype=torch.float64)
    found = lbfgs(GaussianEnergy(mean, cov), init, max_iter=200)
    torch.testing.assert_close(found.argmin, mean.expand(8, 2), atol=1e-6, rtol=0)


def _coupled(w):
    # E(v, w) = w (v − 1)² + w² v²: v* = 1/(1 + w), F(w) = w²/(1 + w)
    return lambda v: w * (v[:, 0] - 1).pow(2) + w.pow(2) * v[:, 0].pow(2)


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
def test_envelope_gradient_matches_closed_form(solver):
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    init = torch.zeros(1, 3, 1, dtype=torch.float64)
    if solver == "gd":
        found = gradient_descent(_coupled(w), init, steps=400, lr=0.1)
    else:
        found = lbfgs(_coupled(w), init)
    wd = w.detach()
    torch.testing.assert_close(found.argmin[:, 0], 1 / (1 + wd))
    torch.testing.assert_close(found.energy.detach(), wd**2 / (1 + wd))
    (grad,) = torch.autograd.grad(found.energy.sum(), w)
    torch.testing.assert_close(grad, (wd**2 + 2 * wd) / (1 + wd) ** 2)
    assert not found.argmin.requires_grad  # envelope: the minimiser is detached
    assert w.grad is None  # inference left no gradient behind


def test_unrolled_gradient_through_the_minimiser():
    # E(v, θ) = (v − θ)²: T steps of size lr give v_T = θ + (1 − 2 lr)^T (v0 − θ),
    # so dv_T/dθ = 1 − (1 − 2 lr)^T exactly
    theta = torch.tensor([0.7, -0.2], dtype=torch.float64, requires_grad=True)
    init = torch.full((1, 2, 1), 3.0, dtype=torch.float64)
    for steps in (1, 5, 30):
        found = gradient_descent(
            lambda v: (v[:, 0] - theta).pow(2), init, steps=steps, lr=0.1, backprop="unrolled"
        )
        (grad,) = torch.autograd.grad(found.argmin.sum(), theta)
        torch.testing.assert_close(grad, torch.full((2,), 1 - 0.8**steps, dtype=torch.float64))
    # many steps: the implicit-function derivative dv*/dw = −1/(1 + w)² of the coupled energy
    w = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    init = torch.zeros(1, 2, 1, dtype=torch.float64)
    found = gradient_descent(_coupled(w), init, steps=300, lr=0.1, backprop="unrolled")
    (grad,) = torch.autograd.grad(found.argmin.sum(), w)
    torch.testing.assert_close(grad, -1 / (1 + w.detach()) ** 2)
    assert init.requires_grad is False


def test_envelope_gradient_passes_gradcheck_against_finite_differences():
    def min_value(w):
        init = torch.zeros(1, 2, 1, dtype=torch.float64)
        return lbfgs(_coupled(w), init).energy

    w = torch.tensor([0.7, 1.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(min_value, (w,), eps=1e-6, atol=1e-5)


def test_minimisers_reject_bad_input():
    init = torch.zeros(2, 3, 1)
    with pytest.raises(ValueError, match="init"):
        gradient_descent(_double_well, torch.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        gradient_descent(_double_well, init, steps=0)
    with pytest.raises(ValueError, match="lr"):
        gradient_descent(_double_well, init, lr=-1.0)
    with pytest.raises(ValueError, match="backprop"):
        gradient_descent(_double_well, init, backprop="implicit")
    with pytest.raises(ValueError, match="backprop"):
        lbfgs(_double_well, init, backprop="unrolled")
    with pytest.raises(ValueError, match="energy must return"):
        gradient_descent(lambda v: v.sum(), init)
    with pytest.raises(ValueError, match="candidates"):
        exhaustive_search(lambda c: c[None], torch.zeros(0))
    with pytest.raises(ValueError, match="energy must return"):
        exhaustive_search(lambda c: c[:1].sum()[None], torch.zeros(5))


# ---- flow / gradient_flow ---------------------------------------------------------------------


@pytest.mark.parametrize("method,options", [("dopri5", None), ("rk4", {"step_size": 0.01})])
def test_flow_matches_linear_ode_closed_form(method, options):
    # dy/dt = A y with A = diag(-1, -3): y(t) = exp(A t) y0
    rates = torch.tensor([1.0, 3.0], dtype=torch.float64)
    y0 = torch.tensor([[1.0, 2.0], [-0.5, 0.3]], dtype=torch.float64)
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    path = flow(lambda y: -rates * y, y0, t, method=method, options=options)
    expected = y0 * torch.exp(-rates * t[:, None, None])
    assert path.shape == (5, 2, 2)
    torch.testing.assert_close(path, expected, rtol=1e-5, atol=1e-6)


def test_flow_autoencoder_field_relaxes_to_fixed_point():
    # dy/dt = G(y) - y with a constant "decoder" G = c: y(t) = c + (y0 - c) e^{-t}
    c = torch.tensor([0.5, -1.0])
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 1.0, 3.0])
    path = flow(lambda y: c - y, y0, t, method="rk4", options={"step_size": 0.05})
    expected = c + (y0 - c) * torch.exp(-t)[:, None, None]
    torch.testing.assert_close(path, expected, rtol=1e-4, atol=1e-5)


def test_gradient_flow_quadratic_closed_form():
    # E = ½ (y-μ)ᵀ P (y-μ) with P = diag(1, 4): y(t) = μ + exp(-P t)(y0 - μ)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    energy = GaussianEnergy(mean, torch.diag(torch.tensor([1.0, 0.25], dtype=torch.float64)))
    y0 = torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 1.5, 4, dtype=torch.float64)
    path = gradient_flow(energy, y0, t, method="rk4", options={"step_size": 0.01})
    decay = torch.exp(-torch.tensor([1.0, 4.0], dtype=torch.float64) * t[:, None, None])
    torch.testing.assert_close(path, mean + decay * (y0 - mean), rtol=1e-6, atol=1e-7)


def test_gradient_flow_descends_monotonically_onto_circle():
    radius = 1.5
    energy = CircleEnergy(radius)
    g = torch.Generator().manual_seed(1)
    angles = 2 * math.pi * torch.rand(16, generator=g)
    r0 = torch.cat([0.2 + 0.8 * torch.rand(8, generator=g), 2.0 + torch.rand(8, generator=g)])
    y0 = r0[:, None] * torch.stack([angles.cos(), angles.sin()], 1)
    t = torch.linspace(0, 3, 61)
    path = gradient_flow(energy, y0, t, method="rk4", options={"step_size": 0.005})
    e = energy(path.reshape(-1, 2)).reshape(len(t), -1)
    assert (e[1:] <= e[:-1] + 1e-6).all(), "energy increased along the gradient flow"
    torch.testing.assert_close(path[-1].norm(dim=1), torch.full((16,), radius), atol=1e-3, rtol=0)
    # the flow is radial for this energy: the angle is kept
    torch.testing.assert_close(torch.atan2(path[-1, :, 1], path[-1, :, 0]).cos(), angles.cos())


def test_gradient_flow_leaves_parameters_without_grad():
    energy = GaussianEnergy(torch.zeros(2), torch.eye(2))
    w = torch.nn.Parameter(torch.tensor(2.0))
    path = gradient_flow(lambda y: w * energy(y), torch.ones(3, 2), torch.tensor([0.0, 1.0]))
    assert not path.requires_grad and w.grad is None


def test_flow_rejects_bad_input():
    y0 = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="t must"):
        flow(lambda y: -y, y0, torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match="t must"):
        flow(lambda y: -y, y0, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="y0"):
        flow(lambda y: -y, [[float("nan"), 1.0]], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="field must return"):
        flow(lambda y: y.sum(1), y0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="method"):
        flow(lambda y: -y, y0, torch.tensor([0.0, 1.0]), method="leapfrog")
    with pytest.raises(ValueError, match="one value per sample"):
        gradient_flow(lambda y: y.pow(2), y0, torch.tensor([0.0, 1.0]))
