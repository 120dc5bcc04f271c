"""Uniform jumps: a Metropolis independence sampler whose proposals are uniform on a box.

Langevin moves a chain by about √(2·step) per step, so its chains hardly ever cross the
high-energy walls between separated modes: the share of chains in each mode then says where they
started, not how much mass exp(−E) gives the mode. A jump proposes x' uniform on the box
[low, high]^D, independent of x, and accepts it with probability min(1, exp(E(x) − E(x'))).
The proposal density is constant on the box, so this Metropolis–Hastings test keeps
p(x) ∝ exp(−E(x)) restricted to the box exactly stationary (an independence sampler, Tierney
1994): mixed into Langevin, jumps let chains move between modes in proportion to their masses.
The acceptance rate is roughly the fraction of the box where p is high, so jumps suit
low-dimensional problems (the 2-D toys), not images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_real, per_sample_energies
from ebm.sampling._common import EnergyFn, check_chains, check_energy_shape, frozen_parameters


def uniform_jump(
    energy: EnergyFn,
    x0: Tensor,
    n_steps: int,
    low: float,
    high: float,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Run ``n_steps`` uniform-jump proposals on every chain.

    energy: callable (B, ...) -> (B,) (or (B, 1), squeezed), low = likely. x0: (B, ...) initial states inside the box
    (not modified; an array-like too, cast to the energy's dtype); its values are not read (no
    host sync): a NaN row stays NaN (its test is never passed), the other chains are unaffected.
    The test is exact for chains inside the box; clamp Langevin chains to the same box.
    n_steps: an int >= 0; low < high: finite reals, the box [low, high]^D.
    generator: the source of the proposals and the accept tests (None: torch's global RNG).
    Returns (samples (B, ...), acceptance rate): the rate is a 0-dim tensor on x0's device, the
    mean over chains and steps of the accept decisions.
    """
    x = check_chains(energy, x0, n_steps, generator).detach().clone()
    low, high = float(check_real("low", low)), float(check_real("high", high))
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    accepted = torch.zeros((), device=x.device, dtype=x.dtype)
    if n_steps == 0:
        return x, accepted
    keep_shape = (-1, *([1] * (x.ndim - 1)))
    with frozen_parameters(energy), torch.no_grad():
        e = check_energy_shape(energy(x), x)
        for _ in range(n_steps):
            proposal = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            proposal = low + (high - low) * proposal
            e_proposal = per_sample_energies("energy", energy(proposal), x.shape[0])
            uniform = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
            accept = uniform.log() < e - e_proposal  # NaN energies compare False: never accepted
            x = torch.where(accept.view(keep_shape), proposal, x)
            e = torch.where(accept, e_proposal, e)
            accepted = accepted + accept.to(x.dtype).mean()
    return x, accepted / n_steps
