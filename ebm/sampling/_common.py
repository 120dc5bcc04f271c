"""Shared pieces of the samplers: argument checks, the energy gradient, optional compilation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    input_gradient,
    module_dtype,
    per_sample_energies,
)
from ebm.sampling._fused_grad import fused_chain, fused_input_gradient

EnergyFn = Callable[[Tensor], Tensor]

# Above this many noise numbers, draw per step instead of preallocating the whole run.
_PREALLOCATE_LIMIT = 1 << 24


def check_sampler_args(
    energy: object,
    x0: object,
    n_steps: object,
    step_size: object,
    generator: object = None,
    compile: object = False,
) -> Tensor:
    """Validate the arguments every gradient-based sampler shares, once per call; return x0 as a
    tensor (see ``check_chains``)."""
    x0 = check_chains(energy, x0, n_steps, generator)
    check_positive("step_size", step_size)
    check_choice("compile", compile, (False, True))
    return x0


def check_chains(energy: object, x0: object, n_steps: object, generator: object = None) -> Tensor:
    """Validate what every sampler takes: the energy, the chains' start, their length and RNG.

    energy: a callable (B, ...) -> (B,) or (B, 1); n_steps: an int >= 0; generator: None or a
    ``torch.Generator``.
    x0: a tensor or an array-like (B, ...); integers become floats, and an ``nn.Module`` energy's
    parameter dtype is used (float64 states into a float32 energy run in float32). The states'
    values are not read (no host sync): NaN in x0 propagates.
    """
    if not callable(energy):
        raise ValueError(
            f"energy must be callable (B, ...) -> (B,) or (B, 1), got {type(energy).__name__}"
        )
    x0 = as_float_tensor("x0", x0, finite=False, dtype=module_dtype(energy))
    if x0.ndim < 1 or x0.shape[0] < 1:
        raise ValueError(f"x0 must have shape (B, ...) with B >= 1, got {tuple(x0.shape)}")
    check_int("n_steps", n_steps, minimum=0)
    check_generator("generator", generator)
    return x0


def check_clamp(clamp: object) -> tuple[float, float] | None:
    """None, or a (low, high) box of finite reals with low < high."""
    if clamp is None:
        return None
    if isinstance(clamp, (str, bytes)) or not hasattr(clamp, "__len__") or len(clamp) != 2:
        raise ValueError(f"clamp must be None or a pair (low, high), got {clamp!r}")
    low = float(check_real("clamp[0]", clamp[0]))
    high = float(check_real("clamp[1]", clamp[1]))
    if not low < high:
        raise ValueError(f"clamp must be (low, high) with low < high, got {clamp!r}")
    return low, high


@contextlib.contextmanager
def frozen_parameters(energy: object) -> Iterator[None]:
    """Switch off ``requires_grad`` of the energy's parameters while sampling.

    Sampling needs ∇ₓE only; with the weights frozen autograd records a smaller graph and never
    builds weight-gradient nodes. The flags are restored on exit.
    """
    params = (
        [p for p in energy.parameters() if p.requires_grad] if isinstance(energy, nn.Module) else []
    )
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def energy_and_grad(energy: EnergyFn, x: Tensor, name: str = "energy") -> tuple[Tensor, Tensor]:
    """E(x) (B,) and ∇ₓE(x) (like x), both detached, by autograd. Works under ``torch.no_grad``.

    energy: callable (B, ...) -> (B,) or (B, 1); x: (B, ...) states. Raises a ValueError naming
    ``name`` (the caller's argument) for any other output shape.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = per_sample_energies(name, energy(x), x.shape[0])
        grad = input_gradient(name, e, x)
    return e.detach(), grad


def gradient_fn(energy: EnergyFn, compile: bool) -> Callable[[Tensor], Tensor]:
    """x -> ∇ₓE(x): the fused layer-chain gradient when the energy is one (``_fused_grad``), else
    ``torch.func.grad`` when ``compile`` (torch.compile cannot trace ``torch.autograd.grad`` on a
    fresh leaf), else autograd.

    energy: callable (B, ...) -> (B,) or (B, 1); compile: whether the caller compiles its step.
    """
    fused = fused_input_gradient(energy)
    if fused is not None:
        return fused
    if compile:
        return torch.func.grad(lambda x: energy(x).sum())
    return lambda x: energy_and_grad(energy, x)[1]


def energy_and_grad_fn(
    energy: EnergyFn, compile: bool
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """x -> (E(x) (B,), ∇ₓE(x)): fused, else ``torch.func`` under compile, else autograd (as
    ``gradient_fn``).

    energy: callable (B, ...) -> (B,) or (B, 1); compile: whether the caller compiles its step.
    """
    chain = fused_chain(energy)
    if chain is not None:
        return chain.value_and_grad
    if not compile:
        return lambda x: energy_and_grad(energy, x)

    def total(x: Tensor) -> tuple[Tensor, Tensor]:
        e = per_sample_energies("energy", energy(x), x.shape[0])
        return e.sum(), e

    grad_and_value = torch.func.grad_and_value(total, has_aux=True)

    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        grad, (_, e) = grad_and_value(x)
        return e, grad

    return fn


def check_energy_shape(e: Tensor, x: Tensor) -> Tensor:
    """Once, before the loop: an energy must return one value per chain, (B,) or (B, 1).
    Returns e as (B,); a ValueError names ``energy`` otherwise."""
    return per_sample_energies("energy", e, x.shape[0])


def maybe_compile(step: Callable, compile: bool) -> Callable:
    """``step`` under ``torch.compile`` (static shapes) when ``compile``, else ``step`` itself."""
    return torch.compile(step, dynamic=False) if compile else step


def noise_source(
    x: Tensor, n_steps: int, generator: torch.Generator | None, per_step: int = 1
) -> Callable[[int], Tensor]:
    """``noise(i)`` -> standard normal draws like (per_step, *x.shape) for step i.

    Small runs draw everything once up front (one kernel instead of n_steps); large ones draw
    per step to bound memory.
    """
    shape = (per_step, *x.shape)
    total = n_steps * per_step * x.numel()
    if total <= _PREALLOCATE_LIMIT:
        bank = torch.randn((n_steps, *shape), generator=generator, device=x.device, dtype=x.dtype)
        return bank.__getitem__
    return lambda i: torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)


def metropolis_chain(
    energy: EnergyFn,
    x: Tensor,
    n_steps: int,
    generator: torch.Generator | None,
    compile: bool,
    step: Callable,
    *step_args,
) -> tuple[Tensor, Tensor]:
    """The driver MALA and HMC share: ``n_steps`` proposals with a Metropolis test each.

    step(value_and_grad, x, e, grad, noise, uniform, *step_args) -> (x, e, grad, accept (B,)).
    Returns (samples like x, acceptance rate as a 0-dim tensor on x's device). The loop never
    reads a value back to the host.
    """
    accepted = torch.zeros((), device=x.device, dtype=x.dtype)
    if n_steps == 0:
        return x, accepted
    value_and_grad = energy_and_grad_fn(energy, compile)
    step = maybe_compile(step, compile)
    with frozen_parameters(energy), torch.no_grad():
        # checks the energy's output shape and dtype, before any draw from the generator
        e, grad = energy_and_grad(energy, x)
        noise = noise_source(x, n_steps, generator)
        uniforms = torch.rand(
            (n_steps, x.shape[0]), generator=generator, device=x.device, dtype=x.dtype
        )
        for i in range(n_steps):
            x, e, grad, accept = step(
                value_and_grad, x, e, grad, noise(i)[0], uniforms[i], *step_args
            )
            accepted += accept.to(x.dtype).mean()
    return x, accepted / n_steps
