"""Metropolis-adjusted Langevin (MALA): a Langevin proposal plus an accept/reject test.

Proposal x' = x − step·∇E(x) + √(2·step)·ε, so q(x'|x) = N(x'; x − step·∇E(x), 2·step·I). The
test accepts with probability min(1, exp(E(x) − E(x') + log q(x|x') − log q(x'|x))), which makes
p(x) ∝ exp(−E(x)) exactly stationary, whatever the step size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm.sampling._common import EnergyFn, check_sampler_args, metropolis_chain


def _log_q(to: Tensor, frm: Tensor, grad_frm: Tensor, step_size: float) -> Tensor:
    """log q(to | frm) up to a constant: −‖to − frm + step·∇E(frm)‖² / (4·step). (B,)"""
    diff = (to - frm + step_size * grad_frm).reshape(
        len(to), -1
    )  # (B, event size), event may be ()
    return -diff.pow(2).sum(1) / (4.0 * step_size)


def _step(value_and_grad, x, e, grad, noise, uniform, step_size: float):
    proposal = x - step_size * grad + math.sqrt(2.0 * step_size) * noise
    e_prop, grad_prop = value_and_grad(proposal)
    log_accept = (
        e
        - e_prop
        + _log_q(x, proposal, grad_prop, step_size)
        - _log_q(proposal, x, grad, step_size)
    )
    accept = uniform.log() < log_accept  # (B,) bool, stays on the device
    keep = accept.view(-1, *([1] * (x.ndim - 1)))
    x = torch.where(keep, proposal, x)
    e = torch.where(accept, e_prop, e)
    grad = torch.where(keep, grad_prop, grad)
    return x, e, grad, accept


def mala(
    energy: EnergyFn,
    x0: Tensor,
    n_steps: int,
    step_size: float,
    generator: torch.Generator | None = None,
    compile: bool = False,
) -> tuple[Tensor, Tensor]:
    """Run ``n_steps`` of MALA on every chain.

    energy: callable (B, ...) -> (B,) (or (B, 1), squeezed), low = likely, with the input
    gradient of ``langevin`` (fused for Linear/Conv chains, else autograd); x0: (B, ...) initial states (not modified;
    an array-like too, cast as in ``langevin``); its values are not read (no host sync): a NaN row
    stays NaN (its proposals are never accepted), the other chains are unaffected.
    step_size: finite, > 0. generator: the source of the proposals' noise and the accept tests
    (None: torch's global RNG). compile: wrap the step in ``torch.compile``.
    Returns (samples (B, ...), acceptance rate): the rate is a 0-dim tensor on x0's device, the
    mean over chains and steps of the accept decisions (aim for about 0.5–0.6).
    """
    x0 = check_sampler_args(energy, x0, n_steps, step_size, generator, compile)
    return metropolis_chain(
        energy, x0.detach().clone(), n_steps, generator, compile, _step, float(step_size)
    )
