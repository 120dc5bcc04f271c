"""Tests for ebm.inference: free energy limits, minimisers of analytic energies, flows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

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
    for average in (False, True):
        torch.testing.assert_close(free_energy(E, average=average), E.min(-1).values)
        torch.testing.assert_close(
            free_energy(E, beta=math.inf, dim=0, average=average), E.min(0).values
        )
        torch.testing.assert_close(
            free_energy(E, beta=1e5, average=average), E.min(-1).values, atol=1e-4, rtol=0
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_free_energy_is_minus_log_partition_sum(dtype):
    # the library's convention (the notes' ∫, a sum over discrete z): −(1/β) log Σ exp(−βE)
    E = _energies(dtype=dtype)
    for beta in (1e-3, 0.3, 1.0, 7.0):
        expected = -logsumexp(-beta * E.double().numpy(), axis=-1) / beta
        torch.testing.assert_close(
            free_energy(E, beta), torch.from_numpy(expected).to(dtype), atol=1e-5, rtol=1e-5
        )
        # the average form differs by exactly log(Nz)/β (up to the rounding of the sum form,
        # whose magnitude grows like log(Nz)/β)
        offset = math.log(E.shape[-1]) / beta
        torch.testing.assert_close(
            free_energy(E, beta, average=True),
            free_energy(E, beta) + offset,
            atol=1e-5 + 4 * torch.finfo(dtype).eps * offset,
            rtol=1e-5,
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_free_energy_average_high_temperature_is_mean(dtype):
    E = _energies(dtype=dtype)
    mean = free_energy(E, beta=1e-9, average=True)
    torch.testing.assert_close(mean, E.mean(-1), atol=1e-5, rtol=1e-5)
    # first-order correction: F_β ≈ mean − (β/2)·var  (cumulant expansion)
    beta = 1e-3
    expected = E.mean(-1) - beta / 2 * E.var(-1, unbiased=False)
    torch.testing.assert_close(free_energy(E, beta, average=True), expected, atol=1e-5, rtol=1e-5)


def test_free_energy_two_point_closed_form():
    a, b = 0.3, 2.0
    E = torch.tensor([a, b], dtype=torch.float64)
    for beta in (0.1, 1.0, 4.0, 50.0):
        total = math.exp(-beta * a) + math.exp(-beta * b)
        assert free_energy(E, beta).item() == pytest.approx(-math.log(total) / beta, rel=1e-12)
        average = free_energy(E, beta, average=True).item()
        assert average == pytest.approx(-math.log(total / 2) / beta, rel=1e-12)
    # equal energies: the sum form counts the Nz states, the average form does not
    E = torch.full((4,), 1.7)
    torch.testing.assert_close(free_energy(E, beta=0.5), torch.tensor(1.7 - 2 * math.log(4)))
    torch.testing.assert_close(free_energy(E, beta=0.5, average=True), torch.tensor(1.7))


def test_free_energy_is_bounded_and_monotone_in_beta():
    E = _energies(seed=3, shape=(64, 9))
    low, high = E.min(-1).values, E.mean(-1)
    betas = [1e-3, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0]
    average = torch.stack([free_energy(E, b, average=True) for b in betas])
    assert (average[1:] <= average[:-1] + 1e-12).all()  # decreasing from the mean to the min
    assert (average >= low - 1e-12).all() and (average <= high + 1e-12).all()
    total = torch.stack([free_energy(E, b) for b in betas])
    # dF/dβ = entropy/β² >= 0: increasing towards the min, min − log(Nz)/β <= F <= min
    assert (total[1:] >= total[:-1] - 1e-12).all()
    for b, f in zip(betas, total):
        assert (f <= low + 1e-12).all() and (f >= low - math.log(9) / b - 1e-12).all()


def test_free_energy_is_stable_for_huge_energies_and_gives_gibbs_gradient():
    beta = 2.0
    shifted = torch.tensor([0.0, 1.0, 50.0], dtype=torch.float64)
    for average, log_z in ((False, torch.logsumexp), (True, _log_mean_exp)):
        E = torch.tensor([[1e4, 1e4 + 1.0, 1e4 + 50.0]], requires_grad=True)  # float32
        F = free_energy(E, beta, average=average)
        assert torch.isfinite(F).all()
        expected = 1e4 - log_z(-beta * shifted, 0).item() / beta
        assert F.item() == pytest.approx(expected, rel=1e-6)
        F.sum().backward()
        torch.testing.assert_close(E.grad, torch.softmax(-beta * E.detach(), dim=-1))


def _log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


@pytest.mark.parametrize("average", [False, True])
def test_free_energy_infinite_limits(average):
    inf = math.inf
    E = torch.tensor(
        [
            [inf, inf, inf],  # no state is allowed: +inf
            [-inf, 1.0, 2.0],  # one state of energy −inf: −inf
            [-inf, inf, 0.0],  # both: −inf
            [1.0, inf, inf],  # +inf states carry zero weight: F of the finite ones
            [math.nan, 0.0, 1.0],  # NaN propagates
        ],
        dtype=torch.float64,
        requires_grad=True,
    )
    for beta in (0.5, 3.0, math.inf):
        F = free_energy(E, beta, average=average)
        assert F[0].item() == inf and F[1].item() == -inf and F[2].item() == -inf
        assert math.isnan(F[4].item())
        offset = math.log(3) / beta if average else 0.0
        assert F[3].item() == pytest.approx(1.0 + offset, rel=1e-12)
    # where F is finite its gradient is finite: all weight on the one finite state; the ±inf
    # slices do not poison it with NaN (their gradient is zero), only the NaN slice is NaN
    for beta in (0.5, math.inf):
        (grad,) = torch.autograd.grad(free_energy(E, beta, average=average)[:4].sum(), E)
        torch.testing.assert_close(grad[3], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
        assert torch.isfinite(grad[:4]).all()


def test_free_energy_accepts_array_likes_and_promotes_integers():
    E = [[0, 1, 3], [2, 2, 2]]
    expected = free_energy(torch.tensor(E, dtype=torch.float32), 0.7)
    torch.testing.assert_close(free_energy(E, 0.7), expected)
    torch.testing.assert_close(free_energy(torch.tensor(E), 0.7), expected)
    torch.testing.assert_close(free_energy(np.array(E), 0.7), expected)
    assert free_energy(torch.tensor(E), math.inf).dtype == torch.float32


def test_free_energy_rejects_bad_input():
    with pytest.raises(ValueError, match="no latent values"):
        free_energy(torch.zeros(3, 0))
    for beta in (0.0, -1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="beta"):
            free_energy(torch.zeros(3, 2), beta=beta)
    with pytest.raises(ValueError, match="E must be a tensor or an array-like"):
        free_energy("1.0")
    with pytest.raises(ValueError, match="E must have at least one dimension"):
        free_energy(torch.tensor(1.0))
    with pytest.raises(ValueError, match="dim"):
        free_energy(torch.zeros(3, 2), dim=2)
    with pytest.raises(ValueError, match="average must be a bool"):
        free_energy(torch.zeros(3, 2), 1.0, average=1)


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


def test_exhaustive_search_propagates_nan_like_torch_min_whatever_the_chunks():
    # problem 0: a NaN energy at candidate 5 (a later chunk, which the chunked path used to drop);
    # problem 1: NaNs at candidates 1 and 6 (the first must win); problem 2: no NaN
    g = torch.Generator().manual_seed(1)
    table = torch.rand(3, 8, generator=g)
    table[0, 5] = table[1, 1] = table[1, 6] = math.nan
    candidates = torch.arange(8.0)

    def energy(c):  # (n,) candidate indices -> (3, n)
        return table[:, c.long()]

    ref_value, ref_index = table.min(1)  # torch's semantics: NaN wins, the first NaN's index
    assert ref_index[:2].tolist() == [5, 1]
    for chunk in (None, 8, 3, 1):
        found = exhaustive_search(energy, candidates, chunk_size=chunk)
        torch.testing.assert_close(found.energy, ref_value, equal_nan=True)
        assert found.argmin.tolist() == ref_index.float().tolist(), chunk


def test_exhaustive_search_promotes_bool_candidates():
    targets = torch.tensor([[0.2, 0.9], [0.8, 0.1]])

    def energy(c):  # (n, 2) -> (2, n); bools would not subtract
        return (targets[:, None] - c[None]).pow(2).sum(-1)

    bools = torch.tensor([[False, True], [True, False], [True, True]])
    found = exhaustive_search(energy, bools)
    assert found.argmin.dtype == torch.get_default_dtype()
    torch.testing.assert_close(found.argmin, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    torch.testing.assert_close(found.energy, torch.tensor([0.05, 0.05]))
    same = exhaustive_search(energy, bools.numpy())
    torch.testing.assert_close(same.argmin, found.argmin)


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
        "gd": lambda init: gradient_descent(_double_well, init, n_steps=300, lr=0.02),
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
        found = gradient_descent(_coupled(w), init, n_steps=400, lr=0.1)
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
            lambda v: (v[:, 0] - theta).pow(2), init, n_steps=steps, lr=0.1, backprop="unrolled"
        )
        (grad,) = torch.autograd.grad(found.argmin.sum(), theta)
        torch.testing.assert_close(grad, torch.full((2,), 1 - 0.8**steps, dtype=torch.float64))
    # many steps: the implicit-function derivative dv*/dw = −1/(1 + w)² of the coupled energy
    w = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    init = torch.zeros(1, 2, 1, dtype=torch.float64)
    found = gradient_descent(_coupled(w), init, n_steps=300, lr=0.1, backprop="unrolled")
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
    with pytest.raises(ValueError, match="n_steps"):
        gradient_descent(_double_well, init, n_steps=0)
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
    # every hyper-parameter is validated before any work, naming it
    bad_calls = [
        (lambda: gradient_descent(_double_well, init, momentum=math.nan), "momentum"),
        (lambda: gradient_descent(_double_well, init, momentum=1.0), "momentum"),
        (lambda: gradient_descent(_double_well, init, momentum="0.5"), "momentum"),
        (lambda: gradient_descent(_double_well, init, lr=math.inf), "lr"),
        (lambda: gradient_descent(_double_well, init, n_steps=2.0), "n_steps"),
        (lambda: gradient_descent("energy", init), "energy must be callable"),
        (lambda: lbfgs(_double_well, init, tolerance_grad=-1.0), "tolerance_grad"),
        (lambda: lbfgs(_double_well, init, tolerance_change=math.nan), "tolerance_change"),
        (lambda: lbfgs(_double_well, init, history_size=True), "history_size"),
        (lambda: lbfgs(_double_well, init, max_iter=0), "max_iter"),
        (lambda: exhaustive_search(lambda c: c[None], torch.zeros(3), chunk_size=0), "chunk_size"),
        (lambda: exhaustive_search(lambda c: c[None], "abc"), "candidates"),
        (lambda: gradient_descent(_double_well, "abc"), "init"),
    ]
    for call, name in bad_calls:
        with pytest.raises(ValueError, match=name):
            call()


def test_minimisers_accept_array_likes_and_promote_integer_starts():
    # integer starting points are promoted to float (an integer v could not move), numpy ints
    # are ints
    starts = [[[2]], [[-2]]]  # (R=2, B=1, 1)
    found = gradient_descent(_double_well, starts, n_steps=np.int64(200), lr=0.05)
    reference = gradient_descent(_double_well, torch.tensor(starts, dtype=torch.float32), 200, 0.05)
    torch.testing.assert_close(found.argmin, reference.argmin)
    assert found.argmin.dtype == torch.float32 and found.argmin.item() < -1.0
    found = lbfgs(_double_well, np.array(starts))
    assert found.argmin.item() == pytest.approx(reference.argmin.item(), abs=1e-3)
    # integer candidates keep their dtype: they are labels handed to the energy
    labels = exhaustive_search(lambda c: (c[None].float() - 2.2).abs(), [0, 1, 2, 3])
    assert labels.argmin.item() == 2 and labels.argmin.dtype == torch.int64


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


def test_gradient_descent_old_steps_name_warns_and_gives_the_same_minimum():
    init = torch.tensor([[[-0.3], [0.4]], [[1.5], [-2.0]]])  # (R=2, B=2, 1)
    with pytest.warns(DeprecationWarning, match="'steps' is deprecated.*use 'n_steps'"):
        old = gradient_descent(_double_well, init, steps=25, lr=0.05)
    new = gradient_descent(_double_well, init, n_steps=25, lr=0.05)
    assert torch.equal(old.argmin, new.argmin) and torch.equal(old.energy, new.energy)
    with pytest.raises(TypeError, match="both 'steps'.*'n_steps'"):
        gradient_descent(_double_well, init, steps=3, n_steps=3)
