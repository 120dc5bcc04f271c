"""Unadjusted Langevin dynamics: noisy gradient descent on the energy.

x ← x − step·∇E(x) + √(2·step)·ε,  ε ~ N(0, I)

With the default noise the chain targets p(x) ∝ exp(−E(x)) up to an O(step) bias (MALA removes
it). EBM training often shrinks the noise (``noise_scale``), which samples a colder density.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_real
from ebm.sampling._common import (
    EnergyFn,
    check_clamp,
    check_energy_shape,
    check_sampler_args,
    frozen_parameters,
    gradient_fn,
    noise_source,
)


def _step(grad_fn, x: Tensor, noise: Tensor, step_size: float, noise_scale: float) -> Tensor:
    # in place on our own copy of the state: no new allocation per step
    return x.add_(grad_fn(x), alpha=-step_size).add_(noise, alpha=noise_scale)


def _pure_step(grad_fn, x: Tensor, noise: Tensor, step_size: float, noise_scale: float) -> Tensor:
    # torch.compile fuses these itself and mishandles in-place updates of its inputs
    return x - step_size * grad_fn(x) + noise_scale * noise


def langevin(
    energy: EnergyFn,
    x0: Tensor,
    n_steps: int,
    step_size: float,
    noise_scale: float | None = None,
    clamp: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> Tensor:
    """Run ``n_steps`` of Langevin dynamics on every chain; return the final states.

    energy: an ``ebm.Energy`` or any callable (B, ...) -> (B,), low = likely; a (B, 1) output
    (a network ending in ``Linear(h, 1)``) is squeezed, any other shape is refused before the
    chains start.
    x0: (B, ...) initial states, one chain per row (not modified): a tensor or an array-like,
    integers promoted to floats, cast to an ``nn.Module`` energy's parameter dtype. Its values
    are not read (no host sync): a NaN/inf row gives a NaN/inf output row, the other chains are
    unaffected.
    step_size: the gradient step (finite, > 0); noise_scale: the noise std per step (finite,
    >= 0), default √(2·step_size). clamp: optional finite (low, high) box the states are clipped
    to after every step. Every hyper-parameter is checked once, before the chains start.
    generator: the source of the noise (the global RNG when None).
    compile: wrap the step in ``torch.compile`` (a first call costs seconds of compilation).
    The input gradient: an ``nn.Module`` whose forward is a chain of Linear/Conv layers,
    activations (SiLU, Tanh, Sigmoid, ReLU, Softplus, GELU, LeakyReLU, ELU), flattens and
    constant scales or shifts ending in ``Linear(h, 1)`` (then optionally squeezed), found by
    ``torch.fx`` in ``MLPEnergy``, an ``nn.Sequential`` or the user's own module, takes a fused
    analytic gradient (no autograd graph); every other energy goes through autograd with its
    weights' ``requires_grad`` switched off (``torch.func.grad`` under ``compile``). Both give
    ∇ₓE.
    Returns (B, ...) detached samples. No host synchronisation happens inside the loop.

    >>> import torch
    >>> from ebm.energies import GaussianEnergy
    >>> energy = GaussianEnergy(torch.tensor([1.0, -1.0]), torch.eye(2))  # N((1, −1), I)
    >>> g = torch.Generator().manual_seed(0)
    >>> x = langevin(energy, torch.zeros(2000, 2), n_steps=200, step_size=0.05, generator=g)
    >>> x.shape, bool((x.mean(0) - torch.tensor([1.0, -1.0])).abs().max() < 0.15)
    (torch.Size([2000, 2]), True)
    """
    x0 = check_sampler_args(energy, x0, n_steps, step_size, generator, compile)
    if noise_scale is None:
        noise_scale = math.sqrt(2.0 * float(step_size))
    else:
        check_real("noise_scale", noise_scale, 0.0)
    clamp = check_clamp(clamp)
    x = x0.detach().clone()
    if n_steps == 0:
        return x
    grad_fn = gradient_fn(energy, compile)
    step = torch.compile(_pure_step, dynamic=False) if compile else _step
    with frozen_parameters(energy), torch.no_grad():
        check_energy_shape(energy(x), x)  # shape and dtype, before any draw from the generator
        noise = noise_source(x, n_steps, generator)
        for i in range(n_steps):
            x = step(grad_fn, x, noise(i)[0], float(step_size), float(noise_scale))
            if clamp is not None:
                x.clamp_(clamp[0], clamp[1])
    return x
