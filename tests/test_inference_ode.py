"""The ODE solves' step budget and input checks of flow and gradient_flow (CNF's and Diffusion's
budgets are tested in test_cnf.py and test_diffusion.py)."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torchdiffeq  # noqa: F401  (imported up front: the timings below exclude its import)

from ebm.energies import GaussianEnergy
from ebm.inference import flow, gradient_flow
from ebm.inference.ode import DEFAULT_MAX_NUM_STEPS, StepBudgetExceeded

HUGE_SPAN = torch.linspace(0, 1, 5) * 1e30


def _quadratic():
    # E = ½ (y-μ)ᵀ P (y-μ), P = diag(1, 4): the gradient flow is y(t) = μ + exp(-P t)(y0 - μ)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    energy = GaussianEnergy(mean, torch.diag(torch.tensor([1.0, 0.25], dtype=torch.float64)))
    rates = torch.tensor([1.0, 4.0], dtype=torch.float64)
    return energy, mean, rates


# ---- the budget -------------------------------------------------------------------------------


def test_budget_error_is_a_runtime_error():
    assert issubclass(StepBudgetExceeded, RuntimeError)
    assert DEFAULT_MAX_NUM_STEPS >= 1000


def test_adaptive_solver_on_a_huge_span_stops_at_the_budget_quickly():
    start = time.perf_counter()
    with pytest.raises(StepBudgetExceeded, match=r"max_num_steps=50.*\[0, 1e\+30\]"):
        flow(lambda y: -y, torch.ones(3, 2), HUGE_SPAN, max_num_steps=50)
    assert time.perf_counter() - start < 1.0


def test_fixed_grid_on_a_huge_span_is_refused_before_any_step():
    calls = []

    def field(y):
        calls.append(1)
        return -y

    start = time.perf_counter()
    with pytest.raises(StepBudgetExceeded, match=r"needs 1e\+32 steps.*max_num_steps=4096"):
        flow(field, torch.ones(3, 2), HUGE_SPAN, method="rk4", options={"step_size": 0.01})
    assert time.perf_counter() - start < 1.0
    assert calls == []


def test_gradient_flow_on_a_huge_span_raises_quickly():
    energy, _, _ = _quadratic()
    y0 = torch.zeros(2, 2, dtype=torch.float64)
    start = time.perf_counter()
    with pytest.raises(StepBudgetExceeded, match="max_num_steps"):
        gradient_flow(energy, y0, HUGE_SPAN, max_num_steps=30)
    with pytest.raises(StepBudgetExceeded, match="max_num_steps"):
        gradient_flow(energy, y0, HUGE_SPAN, method="euler", options={"step_size": 0.1})
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_default_budget_stops_the_default_solver_on_a_huge_span():
    with pytest.raises(StepBudgetExceeded, match=f"max_num_steps={DEFAULT_MAX_NUM_STEPS}"):
        flow(lambda y: -y, torch.ones(3, 2), HUGE_SPAN)


def test_fixed_grid_budget_counts_grid_steps_exactly():
    y0 = torch.ones(1, 1, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    options = {"step_size": 0.1}
    path = flow(lambda y: -y, y0, t, method="rk4", options=options, max_num_steps=10)
    # exactly 10 RK4 steps of h = 0.1 on dy/dt = -y: each multiplies by 1 - h + h²/2 - h³/6 + h⁴/24
    h = 0.1
    rk4 = (1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24) ** 10
    torch.testing.assert_close(
        path[-1, 0, 0], torch.tensor(rk4, dtype=y0.dtype), rtol=1e-12, atol=0
    )
    with pytest.raises(StepBudgetExceeded, match="needs 10 steps"):
        flow(lambda y: -y, y0, t, method="rk4", options=options, max_num_steps=9)
    # without a step size the grid is t itself: 10 intervals
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    flow(lambda y: -y, y0, grid, method="euler", max_num_steps=10)
    with pytest.raises(StepBudgetExceeded, match="max_num_steps=9"):
        flow(lambda y: -y, y0, grid, method="euler", max_num_steps=9)


def test_adaptive_budget_counts_every_step_of_the_solve():
    # the budget is for the whole solve, not per output time: count the steps one solve takes
    y0 = torch.ones(1, 1, dtype=torch.float64)
    t = torch.linspace(0, 20, 21, dtype=torch.float64)
    path = flow(lambda y: -y, y0, t)
    torch.testing.assert_close(path[:, 0, 0], torch.exp(-t), rtol=1e-4, atol=1e-6)
    needed = next(n for n in range(1, 400) if _solves(y0, t, n))
    assert needed > 21  # more than one step per output interval
    with pytest.raises(StepBudgetExceeded):
        flow(lambda y: -y, y0, t, max_num_steps=needed - 1)


def _solves(y0, t, n):
    try:
        flow(lambda y: -y, y0, t, max_num_steps=n)
    except StepBudgetExceeded:
        return False
    return True


@pytest.mark.parametrize("method,options", [("dopri5", None), ("rk4", {"step_size": 0.02})])
def test_normal_spans_still_match_the_closed_form(method, options):
    energy, mean, rates = _quadratic()
    y0 = torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    for t in (torch.linspace(0, 1.5, 4, dtype=torch.float64), torch.tensor([6.0, 4.0, 3.5])):
        t = t.to(torch.float64)
        path = gradient_flow(energy, y0, t, method=method, options=options, rtol=1e-8, atol=1e-9)
        decay = torch.exp(-rates * (t - t[0])[:, None, None])  # growth where t runs backwards
        torch.testing.assert_close(path, mean + decay * (y0 - mean), rtol=1e-5, atol=1e-6)


# ---- inputs of flow / gradient_flow -------------------------------------------------------------


def test_array_likes_are_accepted_and_integers_promoted():
    path = flow(lambda y: -y, [[1, 2]], [0, 1])
    assert path.dtype == torch.get_default_dtype()
    expected = torch.tensor([[1.0, 2.0]]) * math.exp(-1)
    torch.testing.assert_close(path[-1], expected, rtol=1e-4, atol=1e-6)
    energy = GaussianEnergy(torch.zeros(2), torch.eye(2))
    path = gradient_flow(energy, [[1, 2]], [0.0, 1.0])
    torch.testing.assert_close(path[-1], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fn", ["flow", "gradient_flow"])
def test_non_finite_inputs_are_rejected_by_name(fn):
    solve = flow if fn == "flow" else gradient_flow
    first = (lambda y: -y) if fn == "flow" else GaussianEnergy(torch.zeros(2), torch.eye(2))
    y0, t = torch.zeros(2, 2), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="y0"):
        solve(first, torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]), t)
    with pytest.raises(ValueError, match="y0"):
        solve(first, torch.zeros(0, 2), t)
    with pytest.raises(ValueError, match="t contains"):
        solve(first, y0, torch.tensor([0.0, float("inf")]))


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"rtol": -1.0}, "rtol"),
        ({"rtol": float("nan")}, "rtol"),
        ({"atol": float("inf")}, "atol"),
        ({"atol": "1e-6"}, "atol"),
        ({"method": "leapfrog"}, "method"),
        ({"method": "scipy_solver"}, "method"),
        ({"max_num_steps": 0}, "max_num_steps"),
        ({"max_num_steps": 2.5}, "max_num_steps"),
        ({"max_num_steps": True}, "max_num_steps"),
        ({"options": [("step_size", 0.1)]}, "options"),
        ({"method": "rk4", "options": {"step_size": 0.0}}, "step_size"),
        ({"method": "rk4", "options": {"step_size": float("nan")}}, "step_size"),
        ({"options": {"max_num_steps": 10}}, "max_num_steps"),
    ],
)
def test_bad_solver_settings_are_rejected_by_name(kwargs, name):
    energy = GaussianEnergy(torch.zeros(2), torch.eye(2))
    for solve, first in ((flow, lambda y: -y), (gradient_flow, energy)):
        with pytest.raises(ValueError, match=name):
            solve(first, torch.zeros(2, 2), torch.tensor([0.0, 1.0]), **kwargs)


def test_a_field_turning_nan_mid_solve_is_a_clear_error():
    from ebm.inference import NonFiniteODEError

    def field(y):  # finite at the start, NaN once y passes 2
        return torch.where(y > 2.0, torch.nan, y)

    with pytest.raises(NonFiniteODEError, match="field returned NaN or inf"):
        flow(field, torch.ones(2, 1), torch.tensor([0.0, 3.0]))
