"""A CNF training step (issue 18, item 3): ``ebm.models.CNF`` against an FFJORD-style loop written
by hand on ``torchdiffeq.odeint``, the same network (our CNF's own ``field``, so the weights are
equal), interleaved in one process.

A training step is: −log p(y) of a batch through the augmented ODE (y, Δ) from t = 1 to t = 0,
its mean, and the backward pass to the field's parameters (no optimiser step, so every repeat
does the same work). Both sides backpropagate through the solver (``odeint``, not the adjoint:
our CNF differentiates through the solver's steps), with the same method and grid, so each does
the same number of function evaluations (NFE, counted and recorded). The peer's divergence is
FFJORD's: ``divergence_bf`` (one ``autograd.grad`` per dimension) for the exact trace, one
vector-Jacobian product with the same Gaussian probe for Hutchinson's estimator.

Rows: exact trace at d = 2 and d = 16 (16 backward passes per evaluation), Hutchinson at d = 16,
on a fixed rk4 grid (step 0.1: 10 steps, 40 evaluations), and the default adaptive dopri5
(rtol = atol = 1e-5) at d = 2. Before timing, the two log-likelihoods and gradients are checked
equal to rounding. ratio = ours / peer time (lower is better); each row records the spread
(quartiles of the repeats) and the 1-minute load average before → after its pair.
"""

from __future__ import annotations

import math
import os

import torch

from benchmarks.timing import compare, spread
from ebm.models import CNF

BATCH, HIDDEN, REPEATS = 256, (64, 64), 9


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def ffjord_log_prob(field, y, method, rtol, atol, options, v=None, counter=None):
    """log p(y) (B,) the FFJORD way: torchdiffeq.odeint on (z, Δ) with the brute-force trace."""
    from torchdiffeq import odeint

    def augmented(t, state):
        z = state[0]
        if counter is not None:
            counter[0] += 1
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.requires_grad_(True)
            dz = field(torch.cat([z, t.expand(len(z), 1)], 1))
            if v is None:  # FFJORD's divergence_bf
                div = 0.0
                for i in range(z.shape[1]):
                    div = div + torch.autograd.grad(dz[:, i].sum(), z, create_graph=True)[0][:, i]
            else:  # FFJORD's divergence_approx
                div = (torch.autograd.grad(dz, z, v, create_graph=True)[0] * v).sum(1)
        return dz, div

    span = torch.tensor([1.0, 0.0])
    state0 = (y, torch.zeros(len(y)))
    z, delta = (
        s[-1]
        for s in odeint(
            augmented, state0, span, method=method, rtol=rtol, atol=atol, options=options
        )
    )
    return -0.5 * z.pow(2).sum(1) - 0.5 * y.shape[1] * math.log(2 * math.pi) + delta


def _nfe(cnf: CNF, fn) -> int:
    """Function evaluations of one call of ``fn`` (counted on the first layer: a hook on the field itself would take ours off its fast path)."""
    count = [0]
    handle = cnf.field[0].register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    try:
        fn()
    finally:
        handle.remove()
    return count[0]


def _row(label, dim, divergence, method, step_size) -> dict:
    torch.manual_seed(0)
    kwargs = {"step_size": step_size} if step_size else {}
    cnf = CNF(dim, hidden=HIDDEN, divergence=divergence, method=method, **kwargs)
    rtol, atol, options = cnf.rtol, cnf.atol, ({"step_size": step_size} if step_size else None)
    y = torch.randn(BATCH, dim, generator=torch.Generator().manual_seed(1)) * 0.8
    hutch = divergence == "hutchinson"

    def ours():
        cnf.zero_grad(set_to_none=True)
        torch.manual_seed(2)  # the Hutchinson probe: training_step draws it from the global RNG
        loss = cnf.training_step(y)
        loss.backward()
        return loss

    def peer(counter=None):
        cnf.zero_grad(set_to_none=True)
        torch.manual_seed(2)
        v = torch.randn(y.shape) if hutch else None
        lp = ffjord_log_prob(cnf.field, y, method, rtol, atol, options, v, counter)
        loss = -lp.mean()
        loss.backward()
        return loss

    # sanity (not timed): equal losses and gradients, equal NFE
    loss_ours = ours()
    grads_ours = [p.grad.clone() for p in cnf.parameters()]
    loss_peer = peer()
    grads_peer = [p.grad.clone() for p in cnf.parameters()]
    gap = max((a - b).abs().max().item() for a, b in zip(grads_ours, grads_peer))
    scale = max(a.abs().max().item() for a in grads_peer)
    assert abs(loss_ours.item() - loss_peer.item()) < 1e-4 * abs(loss_peer.item()), (
        loss_ours.item(),
        loss_peer.item(),
    )
    assert gap < 1e-3 * scale, (gap, scale)
    nfe_ours = _nfe(cnf, ours)
    counter = [0]
    peer(counter)
    nfe_peer = counter[0]
    before = _load()
    r = compare(ours, peer, repeats=REPEATS, warmup=1)
    q_ours, q_peer = spread(r["ours_times"]), spread(r["peer_times"])
    return {
        "name": f"CNF training step, {label} (batch {BATCH}, MLP {HIDDEN}) vs FFJORD-style loop",
        "ours": f"{1000 * r['ours_s']:.0f} ms ({nfe_ours} NFE)",
        "peer": f"{1000 * r['peer_s']:.0f} ms ({nfe_peer} NFE)",
        "ratio": r["ratio"],
        "target": "<= 1",
        "spread_ms": {
            "ours": [round(1000 * q, 1) for q in q_ours],
            "peer": [round(1000 * q, 1) for q in q_peer],
        },
        "loss": {"ours": loss_ours.item(), "peer": loss_peer.item()},
        "load": [before, _load()],
    }


def run() -> list[dict]:
    return [
        _row("exact trace, d=2, rk4 h=0.1", 2, "exact", "rk4", 0.1),
        _row("exact trace, d=16, rk4 h=0.1", 16, "exact", "rk4", 0.1),
        _row("Hutchinson, d=16, rk4 h=0.1", 16, "hutchinson", "rk4", 0.1),
        _row("exact trace, d=2, dopri5 rtol=atol=1e-5", 2, "exact", "dopri5", None),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
