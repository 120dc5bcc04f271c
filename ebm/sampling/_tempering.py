"""Parallel tempering (replica exchange): chains at several temperatures that trade states.

Replica k samples the tempered density p_k(x) ∝ exp(−β_k·E(x)) for a ladder of inverse
temperatures 1 = β_0 ≥ β_1 ≥ … ≥ β_{K−1} > 0. A hot replica (small β) sees the energy's walls
shrunk β-fold, so it crosses between modes that a chain at β = 1 never leaves. Every
``swap_every`` steps neighbouring replicas propose to exchange their states; the exchange of
x_k (at β_k) and x_{k+1} (at β_{k+1}) is accepted with probability

    min(1, exp((β_k − β_{k+1})·(E(x_k) − E(x_{k+1})))),

the Metropolis ratio of the product density ∏_k p_k, which the exchange therefore leaves
invariant (Swendsen & Wang 1986; Geyer 1991). Pairs alternate between (0, 1), (2, 3), … and
(1, 2), (3, 4), … (the deterministic even–odd scheme, Lingenheil et al. 2009), so every pair
is tried every other round and a state can travel the whole ladder in K − 1 rounds.

All K replicas of all n chains move at once, as one (K·n, *event) tensor: one energy-and-gradient
evaluation per step. The replica at β moves with the Langevin step step_size / β, the natural
scale of β·E: the proposal x − step_size·∇E(x) + √(2·step_size/β)·ε has the same drift at every
temperature and β-fold wider noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_choice, check_int, check_positive
from ebm.sampling._common import (
    EnergyFn,
    check_chains,
    energy_and_grad,
    energy_and_grad_fn,
    frozen_parameters,
    maybe_compile,
    noise_source,
)

_KERNELS = ("mala", "langevin")


def _check_betas(betas: object) -> list[float]:
    """The ladder as Python floats: 1-D, finite, 1 = β_0 ≥ β_1 ≥ … > 0 (one host read)."""
    b = as_float_tensor("betas", betas, ndim=1, dtype=torch.float64, allow_bool=False)
    ladder = b.tolist()
    if not ladder:
        raise ValueError("betas must hold at least one inverse temperature (the first one 1.0)")
    if ladder[0] != 1.0:
        raise ValueError(
            f"betas must start at 1.0 (the target's temperature), got betas[0] = {ladder[0]!r}; "
            "the ladder runs from the target down to the hottest replica, e.g. (1.0, 0.5, 0.25)"
        )
    if min(ladder) <= 0.0:
        raise ValueError(f"betas must all be > 0, got {ladder}")
    if any(cold < hot for cold, hot in zip(ladder, ladder[1:], strict=False)):
        raise ValueError(
            f"betas must be non-increasing from 1.0 (1 = β_0 ≥ β_1 ≥ … > 0), got {ladder}; "
            "an ascending ladder can be passed reversed"
        )
    return ladder


def _log_q(to: Tensor, frm: Tensor, drift: Tensor, inv_4h: Tensor) -> Tensor:
    """log q(to | frm) up to a per-row constant: −‖to − frm + h·β·∇E(frm)‖² / (4h), h = step/β.
    drift: h·β·∇E(frm) = step·∇E(frm); inv_4h: (R,) 1 / (4h) per row. Returns (R,)."""
    return -(to - frm + drift).reshape(len(to), -1).pow(2).sum(1) * inv_4h


def _move(value_and_grad, x, e, grad, noise, uniform, h, noise_std, inv_4h, beta_rows, per_row):
    """One MALA (``uniform`` given) or Langevin (``uniform`` None) step of every replica.
    Returns (x, e, grad). Pure: compiled whole under ``compile=True``."""
    drift = h * grad
    proposal = x - drift + noise_std * noise
    e_prop, grad_prop = value_and_grad(proposal)
    if uniform is None:  # unadjusted Langevin: every move is taken
        return proposal, e_prop, grad_prop
    drift_prop = h * grad_prop
    log_accept = beta_rows * (e - e_prop) + (
        _log_q(x, proposal, drift_prop, inv_4h) - _log_q(proposal, x, drift, inv_4h)
    )
    accept = uniform.log() < log_accept  # NaN compares False: rejected
    keep = accept.view(per_row)
    return (
        torch.where(keep, proposal, x),
        torch.where(accept, e_prop, e),
        torch.where(keep, grad_prop, grad),
    )


def parallel_tempering(
    energy: EnergyFn,
    x0: Tensor,
    betas: Sequence[float] | Tensor,
    n_steps: int,
    step_size: float,
    swap_every: int = 1,
    kernel: str = "mala",
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> tuple[Tensor, Tensor]:
    """Sample exp(−E(x)) by parallel tempering: replicas at the inverse temperatures ``betas``
    move by MALA (or Langevin) and exchange states with their neighbours.

    energy: an ``ebm.Energy`` or any callable (B, *event) -> (B,) (or (B, 1), squeezed), low =
    likely, called on all replicas at once (B = len(betas)·n_chains); its input gradient is
    ``langevin``'s (fused for Linear/Conv chains, else autograd with the weights frozen).
    x0: (n_chains, *event) initial states, a finite tensor or array-like (integers promoted,
    cast to an ``nn.Module`` energy's dtype): every replica of chain i starts at x0[i]. Unlike
    ``langevin``/``mala`` (which run in training's hot loop) its values are checked once, before
    the chains start: NaN/inf raise. The energy's values are not read inside the loop (no host
    sync): a NaN energy rejects that move or swap (NaN compares False), so an energy that is
    NaN everywhere leaves every chain at x0 with swap acceptance 0, not an error.
    betas: the inverse temperatures, a 1-D finite sequence or tensor with betas[0] = 1 (the
    target) and non-increasing after it, all > 0, e.g. (1.0, 0.5, 0.25, 0.125); equal
    neighbours are allowed (their swaps are always accepted); each at least the smallest normal
    number of x0's dtype (1.2e-38 in float32). A single beta (1.0,) runs plain
    MALA (or Langevin). Choose the hottest β so that β·(the energy barrier between modes) is
    a few nats, and space the ladder geometrically, tightly enough that every neighbouring
    pair's swap acceptance stays above about 0.2 (in d dimensions the ratio between
    neighbours must be about 1 − O(1/√d)).
    n_steps: kernel steps (an int >= 0), each one energy-and-gradient evaluation of all
    replicas. step_size: the Langevin step at β = 1 (finite, > 0); the replica at β moves with
    step_size / β, the natural scale of β·E. swap_every: steps between exchange rounds (an int
    >= 1); round r tries the pairs (k, k+1) with k ≡ r (mod 2).
    kernel: "mala" (default) or "langevin". MALA keeps every tempered density p_k ∝ exp(−β_k·E)
    exactly invariant, which the exchange step needs for the β = 1 replica to sample exp(−E)
    exactly; unadjusted Langevin is cheaper (no test) but each replica is biased by O(step),
    and the bias of the hot replicas reaches the target through the swaps.
    generator: the source of the noise, the MALA tests and the swap tests (None: torch's global
    RNG). With a single beta and kernel="mala", the draws (and so the chain) are ``mala``'s.
    compile: wrap the move step in ``torch.compile`` (the gradient by ``torch.func`` unless the
    energy is a fused Linear/Conv chain), as ``mala``'s; the first call costs seconds of
    compilation, and on CPU it pays off only on long runs of non-chain energies (see the
    sampling guide). The swaps stay eager.

    Returns (samples, swap_acceptance). samples: (n_steps, n_chains, *event), the β = 1
    replicas' states after each step (and that step's swaps); discard a burn-in. swap_acceptance:
    (len(betas) − 1,), the fraction of accepted exchanges between betas[k] and betas[k+1] over
    the run and the chains, NaN for a pair never tried (n_steps < 2·swap_every). Both on x0's
    device; no host synchronisation happens inside the loop.

    Cost: n_steps·len(betas)·n_chains energy-and-gradient evaluations, plus one energy read per
    swap (free: the energies are kept from the move).

    >>> import math, torch
    >>> def two_wells(x):  # E = −log(0.3·N(−4, 0.5²) + 0.7·N(4, 0.5²)), up to a constant
    ...     return -torch.logaddexp(math.log(0.3) - 2 * (x[:, 0] + 4) ** 2,
    ...                             math.log(0.7) - 2 * (x[:, 0] - 4) ** 2)
    >>> g = torch.Generator().manual_seed(0)
    >>> x0 = torch.full((100, 1), -4.0)  # every chain starts in the lighter mode
    >>> betas = [0.5**k for k in range(7)]  # 1 … 1/64: the 32-nat wall becomes 0.5 nats
    >>> samples, swaps = parallel_tempering(two_wells, x0, betas, 600, 0.1, generator=g)
    >>> samples.shape, swaps.shape
    (torch.Size([600, 100, 1]), torch.Size([6]))
    >>> right = (samples[200:, :, 0] > 0).float().mean()  # the heavier mode's weight, 0.7
    >>> bool(abs(right - 0.7) < 0.03)
    True
    """
    x0 = check_chains(energy, x0, n_steps, generator)
    if not bool(torch.isfinite(x0).all()):  # once, before the chains start
        raise ValueError(f"x0 must be finite (no NaN or inf), got shape {tuple(x0.shape)}")
    ladder = _check_betas(betas)
    check_positive("step_size", step_size)
    check_int("swap_every", swap_every, minimum=1)
    check_choice("kernel", kernel, _KERNELS)
    check_choice("compile", compile, (False, True))
    n_temps, n_chains, event = len(ladder), x0.shape[0], x0.shape[1:]
    dev, dt = x0.device, x0.dtype
    if min(ladder) < torch.finfo(dt).tiny:  # it would be 0 in the chains' dtype
        raise ValueError(
            f"betas must be >= {torch.finfo(dt).tiny:.3g} (the smallest normal {dt} number, the "
            f"chains' dtype), got min(betas) = {min(ladder):.3g}"
        )
    samples = torch.empty((n_steps, n_chains, *event), device=dev, dtype=dt)
    n_pairs = n_temps - 1
    accepted = torch.zeros(n_pairs, device=dev, dtype=dt)
    tried = [0] * n_pairs  # swap rounds per pair: known on the host, no sync
    if n_steps == 0:
        return samples, torch.full((n_pairs,), math.nan, device=dev, dtype=dt)

    # one row per (temperature, chain), temperature-major: rows k·n … (k+1)·n − 1 are replica k
    x = x0.detach().unsqueeze(0).expand(n_temps, *x0.shape).reshape(n_temps * n_chains, *event)
    x = x.clone()
    per_row = (-1, *([1] * len(event)))

    def rows(values: list[float]) -> Tensor:  # one value per temperature -> (K·n,)
        t = torch.tensor(values, device=dev, dtype=dt)
        return t.repeat_interleave(n_chains)

    h = float(step_size)
    noise_std = rows([math.sqrt(2.0 * h / b) for b in ladder]).view(per_row)
    inv_4h = rows([b / (4.0 * h) for b in ladder])  # 1 / (4·step/β)
    beta_rows = rows(ladder)
    gaps = torch.tensor(
        [ladder[k] - ladder[k + 1] for k in range(n_pairs)], device=dev, dtype=dt
    ).unsqueeze(1)  # (K − 1, 1): β_k − β_{k+1}

    value_and_grad = energy_and_grad_fn(energy, compile)
    move = maybe_compile(_move, compile)
    with frozen_parameters(energy), torch.no_grad():
        # checks the energy's output shape and dtype, before any draw from the generator
        e, grad = energy_and_grad(energy, x)
        noise = noise_source(x, n_steps, generator)  # drawn first: with one beta, mala's draws
        uniforms = (
            torch.rand((n_steps, x.shape[0]), generator=generator, device=dev, dtype=dt)
            if kernel == "mala"
            else None
        )
        n_rounds = 0
        for i in range(n_steps):
            uniform = None if uniforms is None else uniforms[i]
            x, e, grad = move(
                value_and_grad,
                x,
                e,
                grad,
                noise(i)[0],
                uniform,
                h,
                noise_std,
                inv_4h,
                beta_rows,
                per_row,
            )
            if n_pairs and (i + 1) % swap_every == 0:
                x, e, grad = _swap(x, e, grad, gaps, n_rounds % 2, accepted, generator)
                for k in range(n_rounds % 2, n_pairs, 2):
                    tried[k] += 1
                n_rounds += 1
            samples[i] = x[:n_chains]
    counts = torch.tensor(tried, device=dev, dtype=dt)
    rate = torch.where(counts > 0, accepted / counts.clamp_min(1), math.nan)
    return samples, rate


def _swap(
    x: Tensor,
    e: Tensor,
    grad: Tensor,
    gaps: Tensor,
    parity: int,
    accepted: Tensor,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One exchange round on the pairs (k, k+1), k ≡ parity (mod 2); adds each tried pair's
    mean acceptance over the chains to ``accepted`` (K − 1,) in place. x: (K·n, *event) rows
    temperature-major, e: (K·n,), grad like x; gaps: (K − 1, 1) β_k − β_{k+1}."""
    n_temps = gaps.shape[0] + 1
    lo, hi = slice(parity, n_temps - 1, 2), slice(parity + 1, n_temps, 2)
    es = e.view(n_temps, -1)  # (K, n)
    if es[lo].shape[0] == 0:
        return x, e, grad
    u = torch.rand(es[lo].shape, generator=generator, device=x.device, dtype=x.dtype)
    accept = u.log() < gaps[lo] * (es[lo] - es[hi])  # (P, n); NaN energies compare False
    accepted[lo] += accept.to(x.dtype).mean(1)
    swap = accept.view(*accept.shape, *([1] * (x.ndim - 1)))

    def exchange(t: Tensor, mask: Tensor) -> Tensor:
        t = t.view(n_temps, -1, *t.shape[1:])
        out = t.clone()
        out[lo] = torch.where(mask, t[hi], t[lo])
        out[hi] = torch.where(mask, t[lo], t[hi])
        return out.view(-1, *t.shape[2:])

    return exchange(x, swap), exchange(e, accept), exchange(grad, swap)
