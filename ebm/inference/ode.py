"""Deterministic inference as an ODE: follow a vector field, or the energy's steepest descent.

``flow`` integrates dy/dt = field(y) with torchdiffeq; ``gradient_flow`` is the special case
field = −∇E, along which the energy never increases (dE/dt = −‖∇E‖² ≤ 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ebm._checks import check_positive, check_tensor


def _check_times(t: Tensor, y0: Tensor) -> Tensor:
    check_tensor("t", t, ndim=1)
    if t.numel() < 2:
        raise ValueError(f"t must hold at least two time points, got shape {tuple(t.shape)}")
    steps = t[1:] - t[:-1]
    if not (bool((steps > 0).all()) or bool((steps < 0).all())):
        raise ValueError("t must be strictly increasing or strictly decreasing")
    return t.to(device=y0.device, dtype=y0.dtype)


def flow(
    field: Callable[[Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    options: dict | None = None,
) -> Tensor:
    """Integrate the autonomous ODE dy/dt = field(y) from y(t[0]) = y0.

    field: maps (B, ...) -> (B, ...), same shape as its input (e.g. G(y) − y for an autoencoder).
    y0: (B, ...) starting points; t: (T,) strictly monotone time points.
    method: any torchdiffeq solver; the default dopri5 is adaptive (rtol/atol); fixed-step
    solvers ("rk4", "euler", ...) take ``options={"step_size": h}``.
    Returns the trajectory (T, B, ...), with y(t[0]) = y0. Gradients flow through the solver if
    ``field`` and ``y0`` carry them.
    """
    from torchdiffeq import odeint

    check_tensor("y0", y0)
    if not y0.is_floating_point():
        raise ValueError(f"y0 must be a floating-point tensor, got {y0.dtype}")
    t = _check_times(t, y0)
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    if not callable(field):
        raise ValueError(f"field must be callable, got {type(field).__name__}")

    def rhs(_time: Tensor, y: Tensor) -> Tensor:
        dy = field(y)
        if dy.shape != y.shape:
            raise ValueError(
                f"field must return the shape of its input {tuple(y.shape)}, got {tuple(dy.shape)}"
            )
        return dy

    return odeint(rhs, y0, t, method=method, rtol=rtol, atol=atol, options=options)


def gradient_flow(
    energy: Callable[[Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    options: dict | None = None,
) -> Tensor:
    """Deterministic inference: integrate dy/dt = −∇_y E(y) from y0 (see ``flow``).

    energy: maps (B, ...) -> (B,), low = good; for a conditional energy close over x, e.g.
    ``lambda y: model(y, x)``. The samples are independent, so ∇ of the summed energy gives every
    sample its own gradient. Trajectories (T, B, ...) are detached: this is inference, not a
    differentiable layer. Along them E decreases monotonically (up to solver error), and they stop
    at stationary points of E (minima, or saddles they start exactly on).
    """
    if not callable(energy):
        raise ValueError(f"energy must be callable, got {type(energy).__name__}")

    def descent(y: Tensor) -> Tensor:
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            e = energy(y)
            if e.shape != y.shape[:1]:
                raise ValueError(
                    f"energy must return one value per sample, shape ({y.shape[0]},), "
                    f"got {tuple(e.shape)}"
                )
            (grad,) = torch.autograd.grad(e.sum(), y)
        return -grad

    with torch.no_grad():
        return flow(descent, y0.detach(), t, method, rtol, atol, options)
