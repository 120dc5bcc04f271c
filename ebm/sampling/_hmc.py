"""Hamiltonian Monte Carlo with a leapfrog integrator and a diagonal mass matrix.

H(x, p) = E(x) + ½ pᵀ M⁻¹ p with p ~ N(0, M). Each iteration draws a fresh momentum, runs
``n_leapfrog`` leapfrog steps and accepts the end point with probability min(1, exp(H₀ − H₁)).
The leapfrog map is volume preserving and reversible, so p(x) ∝ exp(−E(x)) is exactly stationary.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_int
from ebm.sampling._common import EnergyFn, check_sampler_args, metropolis_chain


def _kinetic(p: Tensor, inv_mass: Tensor) -> Tensor:
    return 0.5 * (p * p * inv_mass).reshape(len(p), -1).sum(1)


def _step(
    value_and_grad, x, e, grad, z, uniform, step_size: float, n_leapfrog: int, sqrt_mass, inv_mass
):
    p = z * sqrt_mass
    h0 = e + _kinetic(p, inv_mass)
    x_new = x
    p = p - 0.5 * step_size * grad
    for k in range(n_leapfrog):
        x_new = x_new + step_size * inv_mass * p
        e_new, grad_new = value_and_grad(x_new)
        if k < n_leapfrog - 1:
            p = p - step_size * grad_new
    p = p - 0.5 * step_size * grad_new
    h1 = e_new + _kinetic(p, inv_mass)
    # NaN energies (a diverging trajectory) compare False, so they are rejected
    accept = uniform.log() < h0 - h1
    keep = accept.view(-1, *([1] * (x.ndim - 1)))
    return (
        torch.where(keep, x_new, x),
        torch.where(accept, e_new, e),
        torch.where(keep, grad_new, grad),
        accept,
    )


def hmc(
    energy: EnergyFn,
    x0: Tensor,
    n_steps: int,
    step_size: float,
    n_leapfrog: int = 10,
    mass: float | Tensor | None = None,
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> tuple[Tensor, Tensor]:
    """Run ``n_steps`` HMC iterations (each ``n_leapfrog`` leapfrog steps) on every chain.

    energy: callable (B, ...) -> (B,) (or (B, 1), squeezed), low = likely, with the input
    gradient of ``langevin`` (fused for Linear/Conv chains, else autograd); x0: (B, ...) initial states (not modified;
    an array-like too, cast as in ``langevin``); its values are not read (no host sync): a NaN
    row stays NaN (its trajectories are never accepted), the other chains are unaffected.
    step_size: finite, > 0; n_leapfrog: an int >= 1.
    mass: the diagonal of M: None (identity), a number, or a finite positive tensor (or
    array-like) of real numbers shaped like one state x0.shape[1:] (bools are refused). A good
    choice is the inverse of the target's marginal variances.
    generator: the source of the momenta and the accept tests (None: torch's global RNG).
    compile: wrap the step in ``torch.compile``.
    Returns (samples (B, ...), acceptance rate as a 0-dim device tensor).
    """
    x0 = check_sampler_args(energy, x0, n_steps, step_size, generator, compile)
    check_int("n_leapfrog", n_leapfrog, minimum=1)
    x = x0.detach().clone()
    if mass is None:
        mass = torch.ones(x.shape[1:], device=x.device, dtype=x.dtype)
    else:
        # one host sync, before the chains: finite and positive
        mass = as_float_tensor("mass", mass, dtype=x.dtype, device=x.device, allow_bool=False)
        if mass.ndim == 0:
            mass = mass.expand(x.shape[1:])
        if mass.shape != x.shape[1:] or not bool((mass > 0).all()):
            raise ValueError(
                f"mass must be positive with shape {tuple(x.shape[1:])} (one state), "
                f"got shape {tuple(mass.shape)}"
            )
    return metropolis_chain(
        energy,
        x,
        n_steps,
        generator,
        compile,
        _step,
        float(step_size),
        n_leapfrog,
        mass.sqrt(),
        mass.reciprocal(),
    )
