"""Minimisers: the answer of lowest energy and that energy, by search or by descent.

Every helper returns ``Minimum(argmin, energy)``. ``backprop`` says how gradients reach the
parameters of the energy (never the candidates or starting points):

- ``"none"``: pure inference, everything detached.
- ``"envelope"`` (default): the minimiser v* is detached and the energy is re-evaluated at it, so
  ∂/∂θ of the returned energy is ∂E/∂θ(v*, θ). By the envelope theorem this IS the gradient of
  the minimum value F(θ) = min_v E(v, θ) when v* is an exact minimiser (∂E/∂v = 0 there); it costs
  one extra forward pass and no memory for the optimisation path.
- ``"unrolled"`` (descent only): the update steps are differentiated (create_graph), so the
  minimiser itself depends on θ (dv*/dθ, e.g. for a loss on v*), exact for the finite number of
  steps taken. Memory grows with the number of steps.

Batches: the problems are independent, so the gradient of the SUMMED energy gives each problem
its own gradient; restarts are a leading dimension and the best restart per problem is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_int,
    check_positive,
    check_real,
    input_gradient,
    per_sample_energies,
)
from ebm._deprecation import renamed_arguments

__all__ = ["Minimum", "exhaustive_search", "gradient_descent", "lbfgs"]


class Minimum(NamedTuple):
    """argmin: (B, *event) the minimisers; energy: (B,) their energies (low = good)."""

    argmin: Tensor
    energy: Tensor


_BACKPROP = ("none", "envelope", "unrolled")


def _check_energy_fn(energy: object) -> None:
    if not callable(energy):
        raise ValueError(f"energy must be callable, got {type(energy).__name__}")


def exhaustive_search(
    energy: Callable[[Tensor], Tensor],
    candidates: Tensor,
    chunk_size: int | None = None,
    backprop: str = "envelope",
) -> Minimum:
    """The best of a discrete (or gridded) candidate set, for every problem of a batch.

    energy: maps a block of candidates (n, *event) to energies (*batch, n), one column per
    candidate (e.g. E(y_b, z_j) for all samples b). candidates: (N, *event), N ≥ 1, a tensor or
    array-like; its dtype is kept (integer candidates, e.g. labels, reach ``energy`` as integers),
    except that bools are promoted to the default float dtype (a bool is not a number to score).
    chunk_size: evaluate at most this many candidates at once (memory), default all.
    backprop: "none" or "envelope": for a discrete set the selected energy's gradient is exactly
    the gradient of the min (the argmin is piecewise constant), so "unrolled" does not apply.
    Returns Minimum(argmin (*batch, *event), energy (*batch,)); ties go to the first candidate.
    A forward pass: NaN propagates as in ``torch.min``: a problem with a NaN candidate energy gets
    energy NaN and the first NaN candidate as its argmin, whatever ``chunk_size`` is.
    """
    _check_energy_fn(energy)
    candidates = _as_candidates(candidates)
    check_choice("backprop", backprop, ("none", "envelope"))
    if candidates.ndim == 0 or candidates.shape[0] == 0:
        raise ValueError(f"candidates must hold at least one value, got {tuple(candidates.shape)}")
    chunk = candidates.shape[0] if chunk_size is None else check_int("chunk_size", chunk_size)
    with torch.set_grad_enabled(torch.is_grad_enabled() and backprop == "envelope"):
        best = index = None
        for start, block in zip(range(0, len(candidates), chunk), candidates.split(chunk)):
            e = energy(block)
            if not isinstance(e, Tensor) or e.ndim < 1 or e.shape[-1] != len(block):
                got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
                raise ValueError(f"energy must return (*batch, {len(block)}) energies, got {got}")
            value, where = e.min(-1)
            if best is None:
                best, index = value, where + start
            else:
                # torch.min's semantics across chunks: NaN wins, and the first NaN stays
                better = (value < best) | (value.isnan() & ~best.isnan())
                best = torch.where(better, value, best)
                index = torch.where(better, where + start, index)
    return Minimum(candidates[index], best)


def _as_candidates(candidates: object) -> Tensor:
    """A tensor of candidates, dtype kept (array-likes via torch.as_tensor) but bools promoted to
    the default float dtype; real numbers only."""
    if not isinstance(candidates, Tensor):
        if isinstance(candidates, (str, bytes)) or candidates is None:
            raise ValueError(f"candidates must be a tensor or an array-like, got {candidates!r}")
        try:
            candidates = torch.as_tensor(candidates)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"candidates must be a rectangular array of numbers: {err}") from err
    if candidates.is_complex():
        raise ValueError(f"candidates must hold real numbers, got dtype {candidates.dtype}")
    if candidates.dtype == torch.bool:
        candidates = candidates.to(torch.get_default_dtype())
    return candidates


def _flat(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])


def _energies(energy: Callable[[Tensor], Tensor], v: Tensor) -> Tensor:
    """energy on the flattened (R·B, *event) block, back as (R, B); a (R·B, 1) output is
    squeezed (a network ending in Linear(h, 1))."""
    e = per_sample_energies("energy", energy(_flat(v)), v.shape[0] * v.shape[1])
    return e.reshape(v.shape[:2])


def _check_init(init: object) -> Tensor:
    """init as a floating tensor (array-likes accepted, integers promoted; no value checks)."""
    init = as_float_tensor("init", init, finite=False)
    if init.ndim < 2 or init.shape[0] == 0 or init.shape[1] == 0:
        raise ValueError(
            f"init must have shape (restarts, batch, *event) with both >= 1, got {tuple(init.shape)}"
        )
    return init


def _best_restart(
    energy: Callable[[Tensor], Tensor], v: Tensor, backprop: str, grad_enabled: bool
) -> Minimum:
    """Evaluate the final iterates (R, B, *event) and keep the best restart of each problem."""
    if backprop != "unrolled":
        v = v.detach()
    with torch.set_grad_enabled(grad_enabled and backprop != "none"):
        e = _energies(energy, v)  # (R, B)
        best, which = e.min(0)  # (B,)
        index = which.reshape(1, -1, *([1] * (v.ndim - 2))).expand(1, *v.shape[1:])
        return Minimum(v.gather(0, index).squeeze(0), best)


@renamed_arguments(steps="n_steps")
def gradient_descent(
    energy: Callable[[Tensor], Tensor],
    init: Tensor,
    n_steps: int = 100,
    lr: float = 0.1,
    momentum: float = 0.0,
    backprop: str = "envelope",
) -> Minimum:
    """Batched gradient descent with restarts: v ← v − lr·∇E(v) (heavy-ball ``momentum``).

    energy: maps (R·B, *event) -> (R·B,) (or (R·B, 1), squeezed), the R restarts stacked
    restart-major (row r·B + b); a conditional energy tiles its condition accordingly, e.g.
    ``x.repeat(R, 1)``.
    init: (R, B, *event) starting points (use ``init[None]`` for a single start); a tensor or
    array-like, integers promoted to float. n_steps: the fixed number of steps, an int >= 1 (no
    convergence test; the old name ``steps`` works until 0.3, with a DeprecationWarning);
    lr > 0; momentum in [0, 1).
    Returns Minimum(argmin (B, *event), energy (B,)) of the best restart per problem (low energy
    = good); see the module docstring for ``backprop``. Gradients never accumulate into
    ``.grad`` of parameters.

    >>> import torch
    >>> found = gradient_descent(lambda v: (v - 3.0).pow(2).sum(1), torch.zeros(1, 2, 1))
    >>> found.argmin.flatten(), found.energy.shape  # two problems, both at v = 3
    (tensor([3.0000, 3.0000]), torch.Size([2]))
    """
    _check_energy_fn(energy)
    init = _check_init(init)
    n_steps = check_int("n_steps", n_steps)
    check_positive("lr", lr)
    check_real("momentum", momentum, 0.0, 1.0, high_inclusive=False)
    check_choice("backprop", backprop, _BACKPROP)
    grad_enabled = torch.is_grad_enabled()
    unrolled = backprop == "unrolled" and grad_enabled
    v = init if unrolled and init.requires_grad else init.detach().clone()
    velocity = torch.zeros_like(v)
    with torch.enable_grad():
        for _ in range(n_steps):
            if not unrolled:
                v = v.detach()
            if not v.requires_grad:
                v.requires_grad_(True)  # a fresh leaf: the caller's init is never modified
            grad = input_gradient("energy", _energies(energy, v), v, create_graph=unrolled)
            velocity = momentum * velocity + grad
            v = v - lr * velocity
    return _best_restart(energy, v, backprop, grad_enabled)


def lbfgs(
    energy: Callable[[Tensor], Tensor],
    init: Tensor,
    max_iter: int = 100,
    lr: float = 1.0,
    history_size: int = 20,
    tolerance_grad: float = 1e-9,
    tolerance_change: float = 1e-12,
    backprop: str = "envelope",
) -> Minimum:
    """L-BFGS (torch.optim.LBFGS, strong-Wolfe line search) on all problems and restarts at once.

    init: (R, B, *event) starting points, as in ``gradient_descent`` (same shapes; energy maps
    (R·B, *event) -> (R·B,), low = good). The batch is one optimisation of the summed energy; its
    Hessian is block-diagonal across problems, which the quasi-Newton pairs approximate jointly,
    so well-conditioned batches converge in far fewer evaluations than plain descent. backprop:
    "none" or "envelope" (the optimiser's steps are not differentiable). max_iter, history_size
    >= 1; lr > 0; tolerance_grad, tolerance_change >= 0 (torch.optim.LBFGS's stopping rules).
    max_iter counts iterations until convergence: the run may stop earlier.
    Returns Minimum(argmin (B, *event), energy (B,)) of the best restart per problem.
    """
    _check_energy_fn(energy)
    init = _check_init(init)
    max_iter = check_int("max_iter", max_iter)
    history_size = check_int("history_size", history_size)
    check_positive("lr", lr)
    check_real("tolerance_grad", tolerance_grad, 0.0)
    check_real("tolerance_change", tolerance_change, 0.0)
    check_choice("backprop", backprop, ("none", "envelope"))
    grad_enabled = torch.is_grad_enabled()
    v = init.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [v],
        lr=lr,
        max_iter=max_iter,
        history_size=history_size,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        with torch.enable_grad():
            e = _energies(energy, v)
            v.grad = input_gradient("energy", e, v)
        return e.sum().detach()

    optimizer.step(closure)
    return _best_restart(energy, v, backprop, grad_enabled)
