"""Deterministic inference as an ODE: follow a vector field, or the energy's steepest descent.

``flow`` integrates dy/dt = field(y) with torchdiffeq; ``gradient_flow`` is the special case
field = −∇E, along which the energy never increases (dE/dt = −‖∇E‖² ≤ 0).

Every solve here (and in ``CNF`` and ``Diffusion``) runs under a step budget, ``max_num_steps``
(default ``DEFAULT_MAX_NUM_STEPS``, as diffrax's ``max_steps``): a fixed-grid solver whose grid
needs more steps fails before it starts, an adaptive one as soon as it has taken that many steps,
with ``StepBudgetExceeded``. Without it a long time span, or a stiff field, never returns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_int,
    check_positive,
    input_gradient,
    per_sample_energies,
)

__all__ = [
    "DEFAULT_MAX_NUM_STEPS",
    "METHODS",
    "NonFiniteODEError",
    "StepBudgetExceeded",
    "flow",
    "gradient_flow",
]

# torchdiffeq's solvers whose steps we can count (scipy_solver reports no steps)
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_GRID_METHODS = (
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
    "fixed_adams",
)
METHODS = ADAPTIVE_METHODS + FIXED_GRID_METHODS
DEFAULT_MAX_NUM_STEPS = 4096


class StepBudgetExceeded(RuntimeError):
    """An ODE solve needed more than ``max_num_steps`` steps (a long span or a stiff field)."""


class NonFiniteODEError(FloatingPointError):
    """The vector field turned NaN or inf during a solve (the adaptive step size collapsed)."""


class _Budgeted:
    """``func`` with a step counter torchdiffeq calls back once per (attempted) step.

    The count is a Python int: no host synchronisation is added to the solver's loop.
    """

    def __init__(self, func: Callable, max_num_steps: int, span: tuple[float, float]):
        self.func, self.max_num_steps, self.span, self.steps = func, max_num_steps, span, 0

    def __call__(self, t: Tensor, y):
        return self.func(t, y)

    def callback_step(self, t0: Tensor, y0, dt: Tensor) -> None:
        self.steps += 1
        if self.steps > self.max_num_steps:
            raise StepBudgetExceeded(
                f"the ODE solver used up max_num_steps={self.max_num_steps} steps on the time "
                f"span [{self.span[0]:.6g}, {self.span[1]:.6g}] and had only reached "
                f"t = {float(t0):.6g} (last step {float(dt):.3g}); shorten the span, loosen "
                f"rtol/atol, or raise max_num_steps"
            )


def overflow_safe_norm(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The adaptive solvers' error norm (torchdiffeq's: the RMS of a tensor, the largest over a
    tuple's tensors) computed as m·RMS(a/m), m = max |a|, so that it does not overflow where the
    squares do: a field of 1e17 against atol 1e-5 (ratio 1e22) squares past float32's 3.4e38,
    the default norm returns inf, the initial step is 0 and the solve stops with
    ``NonFiniteODEError`` although every value is finite. Pass as ``options={"norm": ...}``.
    The same value up to rounding elsewhere; no host sync."""
    parts = state if isinstance(state, tuple) else (state,)
    norms = []
    for part in parts:
        a = part.abs()
        m = a.amax() if a.numel() else a.new_zeros(())
        scaled = a / m.clamp_min(torch.finfo(a.dtype).tiny)
        norms.append(m * scaled.square().mean().sqrt() if a.numel() else m)
    return torch.stack(norms).amax()


def check_ode_args(
    method: object,
    rtol: object,
    atol: object,
    options: object,
    max_num_steps: object,
) -> dict:
    """Validate the solver settings shared by every solve; return a copy of ``options``."""
    check_choice("method", method, METHODS)
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    check_int("max_num_steps", max_num_steps, minimum=1)
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
    if "max_num_steps" in options:
        raise ValueError(
            "options must not hold 'max_num_steps': pass the step budget as the max_num_steps "
            "argument (it counts all steps of the solve, not per output time)"
        )
    if options.get("step_size") is not None:
        check_positive("options['step_size']", options["step_size"])
    return dict(options)


def odeint(
    func: Callable,
    y0,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    options: dict | None = None,
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
):
    """torchdiffeq's ``odeint`` under a step budget. func(t, y) -> dy/dt; y0 a tensor or a tuple
    of tensors; t (T,) strictly monotone, finite. Arguments are validated by the callers (see
    ``check_ode_args``); this only counts. Raises ``StepBudgetExceeded`` past ``max_num_steps``.
    """
    options = dict(options or {})
    span = (float(t[0]), float(t[-1]))
    if method in FIXED_GRID_METHODS:
        step_size = options.get("step_size")
        # torchdiffeq's own grid (in t's dtype): ceil(|span| / h + 1) points, else the points of t
        if step_size:
            n = float(torch.ceil((t[-1] - t[0]).abs() / step_size + 1)) - 1
        else:
            n = len(t) - 1
        if n > max_num_steps:
            raise StepBudgetExceeded(
                f"the fixed grid of method={method!r} needs {n:.6g} steps on the time span "
                f"[{span[0]:.6g}, {span[1]:.6g}], more than max_num_steps={max_num_steps}; "
                f"shorten the span, raise options['step_size'], or raise max_num_steps"
            )
    from torchdiffeq import odeint as _odeint

    budgeted = _Budgeted(func, max_num_steps, span)
    try:
        return _odeint(budgeted, y0, t, method=method, rtol=rtol, atol=atol, options=options)
    except AssertionError as err:  # torchdiffeq's bare assert when the step size collapses
        if "underflow in dt" not in str(err):
            raise
        raise NonFiniteODEError(
            f"the ODE solver's step size underflowed after {budgeted.steps} steps on the time "
            f"span [{span[0]:.6g}, {span[1]:.6g}]: the field returned NaN or inf (or is too "
            "stiff for the tolerances)"
        ) from err


def _check_times(t: object, y0: Tensor) -> Tensor:
    t = as_float_tensor("t", t, ndim=1)
    if t.numel() < 2:
        raise ValueError(f"t must hold at least two time points, got shape {tuple(t.shape)}")
    t = t.to(device=y0.device, dtype=y0.dtype)
    steps = t[1:] - t[:-1]
    if not (bool((steps > 0).all()) or bool((steps < 0).all())):
        raise ValueError(
            f"t must be strictly increasing or strictly decreasing (in y0's dtype {y0.dtype})"
        )
    return t


def _check_y0(y0: object) -> Tensor:
    y0 = as_float_tensor("y0", y0)
    if y0.ndim < 1 or y0.shape[0] < 1:
        raise ValueError(f"y0 must have shape (B, ...) with B >= 1, got {tuple(y0.shape)}")
    return y0


def flow(
    field: Callable[[Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    options: dict | None = None,
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
) -> Tensor:
    """Integrate the autonomous ODE dy/dt = field(y) from y(t[0]) = y0.

    field: maps (B, ...) -> (B, ...), same shape as its input (e.g. G(y) − y for an autoencoder).
    y0: (B, ...) finite starting points (a tensor or an array-like; integers become floats).
    t: (T,) finite, strictly monotone time points, cast to y0's dtype and device.
    method: a torchdiffeq solver, one of ``METHODS``; the default dopri5 is adaptive (rtol/atol);
    fixed-grid solvers ("rk4", "euler", ...) take ``options={"step_size": h}``.
    max_num_steps: the step budget of the whole solve; past it ``StepBudgetExceeded`` is raised
    (a fixed grid that needs more steps is refused before any work).
    Returns the trajectory (T, B, ...), with y(t[0]) = y0. Gradients flow through the solver if
    ``field`` and ``y0`` carry them.
    """
    if not callable(field):
        raise ValueError(f"field must be callable, got {type(field).__name__}")
    y0 = _check_y0(y0)
    t = _check_times(t, y0)
    options = check_ode_args(method, rtol, atol, options, max_num_steps)
    return _flow(field, y0, t, method, rtol, atol, options, max_num_steps)


def _flow(field, y0, t, method, rtol, atol, options, max_num_steps) -> Tensor:
    def rhs(_time: Tensor, y: Tensor) -> Tensor:
        dy = field(y)
        if dy.shape != y.shape:
            raise ValueError(
                f"field must return the shape of its input {tuple(y.shape)}, got {tuple(dy.shape)}"
            )
        return dy

    return odeint(rhs, y0, t, method, rtol, atol, options, max_num_steps)


def gradient_flow(
    energy: Callable[[Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    options: dict | None = None,
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
) -> Tensor:
    """Deterministic inference: integrate dy/dt = −∇_y E(y) from y0.

    y0: (B, ...) finite starting points; t: (T,) strictly monotone time points; method (a
    torchdiffeq solver of ``METHODS``), rtol, atol (the adaptive solvers' tolerances, > 0),
    options (e.g. ``{"step_size": h}`` for a fixed grid) and max_num_steps (the step budget):
    as in ``flow``.

    energy: maps (B, ...) -> (B,) (or (B, 1), squeezed), low = good; for a conditional energy
    close over x, e.g.
    ``lambda y: model(y, x)``. The samples are independent, so ∇ of the summed energy gives every
    sample its own gradient. Trajectories (T, B, ...) are detached: this is inference, not a
    differentiable layer. Along them E decreases monotonically (up to solver error), and they stop
    at stationary points of E (minima, or saddles they start exactly on).
    """
    if not callable(energy):
        raise ValueError(f"energy must be callable, got {type(energy).__name__}")
    y0 = _check_y0(y0).detach()
    t = _check_times(t, y0)
    options = check_ode_args(method, rtol, atol, options, max_num_steps)

    def descent(y: Tensor) -> Tensor:
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            e = per_sample_energies("energy", energy(y), y.shape[0])
            grad = input_gradient("energy", e, y)
        return -grad

    with torch.no_grad():
        return _flow(descent, y0, t, method, rtol, atol, options, max_num_steps)
