"""Annealed importance sampling (Neal 2001) and its reverse (BDMC, Grosse et al. 2015).

The path: p_β(x) ∝ f_β(x) = f₀(x)^(1−β) · exp(−β·E(x)), from the base f₀ = N(0, σ²I) at β = 0
to the target exp(−E) at β = 1, through the temperatures 0 = β₀ < β₁ < … < β_K = 1. Every chain
starts from the base; at each temperature its log-weight gains (β_k − β_{k−1})·(log f₁ − log f₀)
at its current state, then a Metropolis kernel (MALA or HMC) that leaves p_{β_k} invariant moves
it. exp(w) is an unbiased estimate of Z/Z₀, so log Ẑ = log Z₀ + logsumexp(w) − log n is a
stochastic LOWER bound of log Z (Jensen): E[log Ẑ] ≤ log Z.

Run backwards from exact samples of exp(−E)/Z (the same kernels, β from 1 down to 0), exp(w)
estimates Z₀/Z without bias, so log Z₀ − (logsumexp(w) − log n) is a stochastic UPPER bound:
the two make the sandwich of bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015). Exact
samples exist for simulated data (draw the data from the model); the gap between the bounds
bounds the error of either.

Every chain advances at once, as one (n_chains, *event) tensor; the log-weights are accumulated
in float64. The kernels' step size adapts between temperatures towards a target acceptance rate
(on the mean over the chains, a device tensor: no host sync in the loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_shape,
    module_dtype,
    per_sample_energies,
)
from ebm.sampling._common import EnergyFn, energy_and_grad, frozen_parameters
from ebm.sampling._hmc import _kinetic
from ebm.sampling._mala import _log_q

# the target acceptance rates the step size adapts towards (Roberts & Rosenthal 1998; Neal 2011)
_TARGET_ACCEPT = {"mala": 0.574, "hmc": 0.65}
# multiplicative step-size adaptation per temperature (as in Wu et al. 2017's AIS code)
_ADAPT_UP, _ADAPT_DOWN = 1.02, 0.98


class AISResult(NamedTuple):
    """What ``ais`` and ``reverse_ais`` return.

    log_z: 0-d float64, the estimate of log Z = log ∫ exp(−E(x)) dx (``ais``: a stochastic lower
    bound; ``reverse_ais``: a stochastic upper bound). stderr: 0-d float64, its standard error
    by the delta method on the mean of exp(w − max w). log_weights: (n_chains,) float64, the
    chains' log-weights w. ess: 0-d float64, the weights' effective sample size
    (Σ exp w)² / Σ exp 2w, between 1 and n_chains. samples: (n_chains, *event), the chains'
    final states (``ais``: approximately exp(−E)/Z, unweighted; ``reverse_ais``: approximately
    the base). acceptance: 0-d, the kernels' mean acceptance rate. step_size: 0-d, the adapted
    step size at the last temperature. All tensors on the energy's device.
    """

    log_z: Tensor
    stderr: Tensor
    log_weights: Tensor
    ess: Tensor
    samples: Tensor
    acceptance: Tensor
    step_size: Tensor


# ---- the tempered kernels ---------------------------------------------------------------------
# Each step carries (x, e, g): the state, its TARGET energy E(x) (B,) and ∇E(x); the tempered
# energy E_β = β·E + (1 − β)·‖x‖²/(2σ²) and its gradient are formed on the fly, so the weight
# increments read E(x) without evaluating the energy again.


def _tempered(x: Tensor, e: Tensor, g: Tensor, beta: Tensor, inv_var: float):
    base = 0.5 * inv_var * x.reshape(len(x), -1).pow(2).sum(1)
    return beta * e + (1 - beta) * base, beta * g + (1 - beta) * inv_var * x


def _mala_step(vg, x, e, g, beta, h, inv_var, generator, n_leapfrog):
    """One MALA step for p_β (proposal and acceptance test as ``ebm.sampling.mala``)."""
    et, gt = _tempered(x, e, g, beta, inv_var)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    prop = x - h * gt + torch.sqrt(2 * h) * noise
    e_new, g_new = vg(prop)
    et_new, gt_new = _tempered(prop, e_new, g_new, beta, inv_var)
    log_accept = et - et_new + _log_q(x, prop, gt_new, h) - _log_q(prop, x, gt, h)
    return prop, e_new, g_new, log_accept


def _hmc_step(vg, x, e, g, beta, h, inv_var, generator, n_leapfrog):
    """One HMC trajectory for p_β (unit mass, ``n_leapfrog`` leapfrog steps, as ``ebm.sampling.hmc``)."""
    p = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    ones = torch.ones((), device=x.device, dtype=x.dtype)
    et, gt = _tempered(x, e, g, beta, inv_var)
    h0 = et + _kinetic(p, ones)
    x_new, e_new, g_new = x, e, g
    p = p - 0.5 * h * gt
    for k in range(n_leapfrog):
        x_new = x_new + h * p
        e_new, g_new = vg(x_new)
        _, gt = _tempered(x_new, e_new, g_new, beta, inv_var)
        p = p - (h if k < n_leapfrog - 1 else 0.5 * h) * gt
    et_new, _ = _tempered(x_new, e_new, g_new, beta, inv_var)
    return x_new, e_new, g_new, h0 - et_new - _kinetic(p, ones)


_KERNELS: dict[str, Callable] = {"mala": _mala_step, "hmc": _hmc_step}


def _schedule(name: str, n_temps: int, dtype: torch.dtype, device) -> Tensor:
    """β₀ = 0 < … < β_K = 1, K = n_temps, in float64."""
    t = torch.linspace(0, 1, n_temps + 1, dtype=torch.float64, device=device)
    if name == "sigmoid":  # Grosse et al. 2013 / Wu et al. 2017: dense at both ends
        s = torch.sigmoid(4.0 * (2 * t - 1))
        t = (s - s[0]) / (s[-1] - s[0])
    return t


def _anneal(
    energy: EnergyFn,
    x: Tensor,
    betas: Tensor,
    base_std: float,
    kernel: str,
    n_steps: int,
    step_size: float,
    n_leapfrog: int,
    adapt: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run every chain along ``betas`` (either direction); return (w float64 (B,), x, mean
    acceptance, last step size). At temperature k: w += (β_k − β_{k−1})·(log f₁ − log f₀)(x),
    then ``n_steps`` kernel steps for p_{β_k} (none after the last temperature)."""
    inv_var = 1.0 / base_std**2
    step = _KERNELS[kernel]
    target = _TARGET_ACCEPT[kernel]
    h = torch.tensor(float(step_size), device=x.device, dtype=x.dtype)
    w = torch.zeros(x.shape[0], device=x.device, dtype=torch.float64)
    accepted = torch.zeros((), device=x.device, dtype=x.dtype)
    n_moves = 0

    def vg(z: Tensor) -> tuple[Tensor, Tensor]:
        e, g = energy_and_grad(energy, z)
        return e.reshape(z.shape[0]), g

    with frozen_parameters(energy), torch.no_grad():
        e, g = energy_and_grad(energy, x)  # (B,): shape and dtype checked
        last = len(betas) - 1
        for k in range(1, len(betas)):
            log_ratio = 0.5 * inv_var * x.reshape(len(x), -1).pow(2).sum(1) - e  # log f₁ − log f₀
            w += (betas[k] - betas[k - 1]) * log_ratio.to(torch.float64)
            if k == last:
                break
            beta = betas[k].to(x.dtype)
            for _ in range(n_steps):
                prop, e_new, g_new, log_accept = step(
                    vg, x, e, g, beta, h, inv_var, generator, n_leapfrog
                )
                u = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
                accept = u.log() < log_accept  # NaN proposals compare False: rejected
                keep = accept.view(-1, *([1] * (x.ndim - 1)))
                x = torch.where(keep, prop, x)
                e = torch.where(accept, e_new, e)
                g = torch.where(keep, g_new, g)
                rate = accept.to(x.dtype).mean()
                accepted += rate
                n_moves += 1
                if adapt:
                    h = h * torch.where(rate > target, _ADAPT_UP, _ADAPT_DOWN)
    acceptance = accepted / max(n_moves, 1)
    return w, x, acceptance, h


def _log_mean_exp(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(logsumexp(w) − log n, its delta-method stderr, the ESS) of float64 log-weights (n,)."""
    n = w.shape[0]
    r = torch.exp(w - w.max())  # in (0, 1], the largest is 1
    mean = r.mean()
    stderr = r.std() / (math.sqrt(n) * mean)  # sd of log(mean) ≈ sd(mean) / mean
    ess = r.sum().square() / r.square().sum()
    return torch.logsumexp(w, 0) - math.log(n), stderr, ess


def _event(dim: object) -> tuple[int, ...]:
    if isinstance(dim, (tuple, list, torch.Size)):
        return check_shape("dim", dim)
    return (check_int("dim", dim, minimum=1),)


def _device(energy: object) -> torch.device:
    if isinstance(energy, nn.Module):
        for t in (*energy.parameters(), *energy.buffers()):
            return t.device
    return torch.device("cpu")


def _check_common(
    energy, n_temps, base_std, kernel, n_steps, step_size, n_leapfrog, adapt, schedule, generator
) -> None:
    if not callable(energy):
        raise ValueError(f"energy must be callable (B, ...) -> (B,), got {type(energy).__name__}")
    check_int("n_temps", n_temps, minimum=1)
    check_positive("base_std", base_std)
    check_choice("kernel", kernel, tuple(_KERNELS))
    check_int("n_steps", n_steps, minimum=1)
    check_positive("step_size", step_size)
    check_int("n_leapfrog", n_leapfrog, minimum=1)
    check_choice("adapt", adapt, (True, False))
    check_choice("schedule", schedule, ("sigmoid", "linear"))
    check_generator("generator", generator)


def ais(
    energy: EnergyFn,
    dim: int | tuple[int, ...],
    n_chains: int = 256,
    n_temps: int = 1000,
    base_std: float = 1.0,
    kernel: str = "mala",
    n_steps: int = 1,
    step_size: float = 0.1,
    n_leapfrog: int = 5,
    adapt: bool = True,
    schedule: str = "sigmoid",
    generator: torch.Generator | None = None,
) -> AISResult:
    """Estimate log Z = log ∫ exp(−E(x)) dx by annealed importance sampling (Neal 2001).

    energy: an ``ebm.Energy`` or any callable (B, *event) -> (B,) (or (B, 1)), low = likely;
    an ``nn.Module`` energy sets the chains' device and dtype (else the CPU and torch's default
    dtype); its parameters are frozen while the chains run. dim: the event shape, an int D for
    (B, D) states or a tuple such as (1, 28, 28).
    n_chains: independent chains (an int >= 2), run at once as one tensor. n_temps: the number
    K of annealing steps (an int >= 1; the cost is linear in it). base_std: σ of the base
    N(0, σ²I) (finite, > 0): choose it to cover the target's mass (too narrow a base misses
    modes and biases log Z down). kernel: "mala" (default: one energy gradient per step) or
    "hmc" (``n_leapfrog`` leapfrog steps, unit mass), each a Metropolis kernel exact for p_β;
    n_steps: kernel steps per temperature (an int >= 1); step_size: the initial step (finite,
    > 0: the Langevin step h for MALA, the leapfrog step for HMC). adapt: multiply the step by
    1.02 or 0.98 after each temperature, as the chains' mean acceptance is above or below the
    kernel's target (0.574 MALA, 0.65 HMC); the step then depends on the chains' past through
    their mean, a bias of order 1/n_chains (``adapt=False`` keeps every kernel fixed and
    exp(log Ẑ) exactly unbiased for Z). schedule: "sigmoid" (the temperatures dense near both
    ends, Grosse et al. 2013) or "linear". n_leapfrog: an int >= 1 (HMC only).
    generator: the source of every draw (None: torch's global RNG).

    Returns an ``AISResult``: ``.log_z`` (0-d float64, E[log Ẑ] ≤ log Z by Jensen's inequality,
    the gap about Var(w)/(2·n_chains)), ``.stderr``, ``.log_weights``, ``.ess``, ``.samples``.
    ``reverse_ais`` gives the matching upper bound from exact samples.

    Cost: n_chains × n_temps × n_steps energy-and-gradient evaluations (× n_leapfrog for HMC),
    each on all chains at once. Measured (tests/test_sampling_ais.py, one thread of a shared
    2-core CPU, closed-form log Z): Gaussians with full covariances at d = 16 within 0.02 nats
    with the defaults (256 chains × 1000 temperatures × 1 MALA step, about 2 s), at d = 64
    within 0.04 nats (about 3–5 s) and within 0.02 with 3000 temperatures (about 10 s);
    three-mode Gaussian mixtures (equal widths) at d = 16 within 0.01 nats with 512 chains ×
    2000 temperatures (about 5 s). Modes of very different widths at high d need far more
    temperatures: the geometric path moves mass between modes the chains cannot follow, and
    the weights degenerate (watch ``.ess``).

    >>> import math, torch
    >>> from ebm.energies import GaussianEnergy
    >>> energy = GaussianEnergy(torch.zeros(2), torch.eye(2))  # Z = 2π
    >>> r = ais(energy, dim=2, n_chains=64, n_temps=200, generator=torch.Generator().manual_seed(0))
    >>> bool(abs(r.log_z - math.log(2 * math.pi)) < 0.05), r.log_z.dtype
    (True, torch.float64)
    """
    event = _event(dim)
    check_int("n_chains", n_chains, minimum=2)
    _check_common(
        energy,
        n_temps,
        base_std,
        kernel,
        n_steps,
        step_size,
        n_leapfrog,
        adapt,
        schedule,
        generator,
    )
    device = _device(energy)
    dtype = module_dtype(energy) or torch.get_default_dtype()
    betas = _schedule(schedule, n_temps, dtype, device)
    x = base_std * torch.randn((n_chains, *event), generator=generator, device=device, dtype=dtype)
    w, x, acceptance, h = _anneal(
        energy, x, betas, float(base_std), kernel, n_steps, step_size, n_leapfrog, adapt, generator
    )
    log_mean, stderr, ess = _log_mean_exp(w)
    log_z0 = 0.5 * math.prod(event) * math.log(2 * math.pi * float(base_std) ** 2)
    return AISResult(log_z0 + log_mean, stderr, w, ess, x, acceptance, h)


def reverse_ais(
    energy: EnergyFn,
    samples: Tensor,
    n_temps: int = 1000,
    base_std: float = 1.0,
    kernel: str = "mala",
    n_steps: int = 1,
    step_size: float = 0.1,
    n_leapfrog: int = 5,
    adapt: bool = True,
    schedule: str = "sigmoid",
    generator: torch.Generator | None = None,
) -> AISResult:
    """A stochastic UPPER bound on log Z: AIS run backwards from exact samples (BDMC).

    Bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015): started from exact samples of
    p = exp(−E)/Z, the chains anneal from β = 1 to the base N(0, σ²I) through the same kernels
    and temperatures as ``ais``; exp(w) is then an unbiased estimate of Z₀/Z, and log Ẑ =
    log Z₀ − (logsumexp(w) − log n) satisfies E[log Ẑ] ≥ log Z. With ``ais``'s estimate it
    sandwiches log Z; the gap bounds the error of either (on average).

    energy: as in ``ais`` (callable (B, *event) -> (B,) or (B, 1), low = likely).
    samples: (n, *event), n >= 2, EXACT draws from exp(−E)/Z (e.g. the data a model was
    simulated from; approximate MCMC samples void the bound): a finite tensor or array-like,
    cast to an ``nn.Module`` energy's dtype; one chain each, on their device.
    n_temps, base_std, kernel, n_steps, step_size, n_leapfrog, adapt, schedule, generator: as in
    ``ais`` (the same temperatures, visited from β = 1 down to 0; the step adapts from
    ``step_size`` at β = 1).
    Returns an ``AISResult`` (``.log_z`` the upper bound, ``.samples`` the chains' end states,
    approximately the base). Cost: as ``ais`` with n_chains = n.

    >>> import math, torch
    >>> from ebm.energies import GaussianEnergy
    >>> energy = GaussianEnergy(torch.zeros(2), torch.eye(2))  # Z = 2π
    >>> exact = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    >>> g = torch.Generator().manual_seed(0)
    >>> upper = reverse_ais(energy, exact, n_temps=200, generator=g).log_z
    >>> lower = ais(energy, dim=2, n_chains=64, n_temps=200, generator=g).log_z
    >>> bool(lower - 0.05 < math.log(2 * math.pi) < upper + 0.05)
    True
    """
    _check_common(
        energy,
        n_temps,
        base_std,
        kernel,
        n_steps,
        step_size,
        n_leapfrog,
        adapt,
        schedule,
        generator,
    )
    x = as_float_tensor("samples", samples, dtype=module_dtype(energy))
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"samples must have shape (n, *event) with n >= 2, got {tuple(x.shape)}")
    x = x.detach().clone()
    betas = _schedule(schedule, n_temps, x.dtype, x.device).flip(0)
    w, x, acceptance, h = _anneal(
        energy, x, betas, float(base_std), kernel, n_steps, step_size, n_leapfrog, adapt, generator
    )
    log_mean, stderr, ess = _log_mean_exp(w)
    log_z0 = 0.5 * math.prod(x.shape[1:]) * math.log(2 * math.pi * float(base_std) ** 2)
    return AISResult(log_z0 - log_mean, stderr, w, ess, x, acceptance, h)


def log_likelihood(
    energy: EnergyFn,
    x: Tensor,
    log_z: float | Tensor | AISResult | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """log p(x) = −E(x) − log Z for each row of x (nats).

    energy: callable (B, *event) -> (B,) (or (B, 1)), low = likely. x: (B, *event), a finite
    tensor or array-like, cast to an ``nn.Module`` energy's dtype. log_z: the log partition
    function: a finite number, a 0-d tensor, or an ``AISResult`` (its ``.log_z``); None: it is
    estimated by ``ais(energy, x.shape[1:], generator=generator)`` with the defaults (256 chains ×
    1000 temperatures). An AIS estimate is a stochastic lower bound of log Z, so the
    log-likelihood it gives is, on average, an upper bound (use ``reverse_ais`` on exact samples
    to bracket it). generator: used only when log_z is None.
    Returns (B,) log-likelihoods, in float64 when log Z comes from AIS (its dtype) else x's dtype.

    >>> import math, torch
    >>> from ebm.energies import GaussianEnergy
    >>> energy = GaussianEnergy(torch.zeros(1), torch.eye(1))  # N(0, 1): log Z = ½ log 2π
    >>> log_likelihood(energy, torch.zeros(1, 1), log_z=0.5 * math.log(2 * math.pi))
    tensor([-0.9189])
    """
    x = as_float_tensor("x", x, dtype=module_dtype(energy))
    if not callable(energy):
        raise ValueError(f"energy must be callable (B, ...) -> (B,), got {type(energy).__name__}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (B, *event) with B >= 1, got {tuple(x.shape)}")
    check_generator("generator", generator)
    if log_z is None:
        log_z = ais(energy, tuple(x.shape[1:]), generator=generator).log_z
    elif isinstance(log_z, AISResult):
        log_z = log_z.log_z
    else:
        log_z = as_float_tensor("log_z", log_z, ndim=0, allow_bool=False)
    with torch.no_grad():
        e = per_sample_energies("energy", energy(x), x.shape[0])
    dtype = torch.promote_types(e.dtype, log_z.dtype)
    return -e.reshape(-1).to(dtype) - log_z.to(device=e.device, dtype=dtype)
