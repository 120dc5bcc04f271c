"""Our flow-matching training step (``CNF(objective="flow_matching").training_step``) against
torchcfm's ``ConditionalFlowMatcher`` (independent pairs) and
``ExactOptimalTransportConditionalFlowMatcher`` (minibatch OT pairs) with the same field: an MLP
[y, t] (3) → 64 → 64 → 64 → 2, tanh, Adam 3e-3, batches of 256 standardised two-moons points,
σ_min = 0 (both: x_t = (1 − t)x₀ + t x₁, u = x₁ − x₀).

Rows: the CPU time of 100 optimiser steps (draws, pairing, loss, backward, Adam), interleaved
medians and quartiles of 11 repeats; then the exact assignment alone (our ``_ot_permutation``
against torchcfm's ``OTPlanSampler.get_map``: each builds the squared-distance cost from the two
batches and solves it; no pair sampling) on the same 100 batches. Run with OMP_NUM_THREADS=1, the process's CPU time is the work itself, which other jobs
on a shared machine do not inflate (wall time does).
Ours pairs by scipy's ``linear_sum_assignment`` (an exact permutation); torchcfm solves the same
assignment with POT's ``emd`` and then draws B pairs from the plan with replacement. The losses
differ by a constant factor (ours sums the squared error over the 2 coordinates, torchcfm
averages), which Adam's updates do not see. Each row records the 1-minute load average before
and after its pair (the machine may be shared). Target: ours no slower (ratio ≤ 1).
torchcfm is optional (``pip install --no-deps torchcfm pot``: no torch upgrade); without it the
rows say so.
"""

from __future__ import annotations

import os
import time

import torch

from benchmarks.timing import compare, spread
from ebm.data import two_moons
from ebm.models import CNF
from ebm.models.cnf import _ot_permutation

BATCH, STEPS, LR, REPEATS = 256, 100, 3e-3, 11


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _spread_ms(r: dict) -> dict:
    """Quartiles of the repeats, ms per step (or per batch)."""
    return {
        side: [round(1000 * q / STEPS, 2) for q in spread(r[f"{side}_times"])]
        for side in ("ours", "peer")
    }


def _batches() -> list[torch.Tensor]:
    y = two_moons(BATCH * STEPS, noise=0.05, generator=torch.Generator().manual_seed(0))
    y = (y - y.mean(0)) / y.std(0)
    return list(y.split(BATCH))


def run() -> list[dict]:
    try:
        from torchcfm.conditional_flow_matching import (
            ConditionalFlowMatcher,
            ExactOptimalTransportConditionalFlowMatcher,
        )
    except ImportError as error:
        msg = f"torchcfm not importable (missing {error.name}: pip install --no-deps torchcfm pot)"
        return [
            {"name": f"flow matching {p} pairs vs torchcfm", "ours": "", "peer": msg,
             "ratio": float("nan"), "target": "≤ 1"}
            for p in ("independent", "OT", "OT assignment")
        ]  # fmt: skip
    from torchcfm.optimal_transport import OTPlanSampler

    batches = _batches()
    rows = []
    for pairing, peer_cls in (
        ("independent", ConditionalFlowMatcher),
        ("ot", ExactOptimalTransportConditionalFlowMatcher),
    ):
        torch.manual_seed(0)
        ours_model = CNF(2, hidden=(64, 64, 64), lr=LR, objective="flow_matching", pairing=pairing)
        peer_net = CNF(2, hidden=(64, 64, 64)).field  # the same MLP, driven by torchcfm
        peer_net.load_state_dict(ours_model.field.state_dict())
        ours_opt = ours_model.configure_optimizers()
        peer_opt = torch.optim.Adam(peer_net.parameters(), lr=LR)
        matcher = peer_cls(sigma=0.0)

        def ours(model=ours_model, opt=ours_opt):
            for y in batches:
                opt.zero_grad(set_to_none=True)
                model.training_step(y).backward()
                opt.step()

        def peer(net=peer_net, opt=peer_opt, matcher=matcher):
            for x1 in batches:
                opt.zero_grad(set_to_none=True)
                x0 = torch.randn_like(x1)
                t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
                vt = net(torch.cat([xt, t[:, None]], dim=1))
                ((vt - ut) ** 2).mean().backward()
                opt.step()

        before = _load()
        timing = compare(ours, peer, repeats=REPEATS, warmup=1, clock=time.process_time)
        label = "independent" if pairing == "independent" else "minibatch-OT"
        peer_name = peer_cls.__name__
        rows.append(
            {
                "name": f"flow matching, {label} pairs: {STEPS} steps, batch {BATCH}, "
                f"MLP 3-64-64-64-2 vs torchcfm {peer_name}",
                "ours": f"{1000 * timing['ours_s'] / STEPS:.2f} ms/step (CPU)",
                "peer": f"{1000 * timing['peer_s'] / STEPS:.2f} ms/step (CPU)",
                "ratio": timing["ratio"],
                "target": "≤ 1",
                "spread_ms": _spread_ms(timing),  # quartiles, ms per step
                "load": [before, _load()],  # 1-minute load average
            }
        )
    # the exact assignment alone, on the same batches against fresh N(0, I) draws
    g = torch.Generator().manual_seed(1)
    x0s = [torch.randn(BATCH, 2, generator=g) for _ in batches]
    plan = OTPlanSampler(method="exact")

    def ours_ot():
        for x0, x1 in zip(x0s, batches):
            _ot_permutation(x0, x1)

    def peer_ot():
        for x0, x1 in zip(x0s, batches):
            plan.get_map(x0, x1)

    before = _load()
    timing = compare(ours_ot, peer_ot, repeats=REPEATS, warmup=1, clock=time.process_time)
    rows.append(
        {
            "name": f"exact OT assignment alone: {STEPS} batches of {BATCH} two-moons vs N(0, I) "
            "points, scipy linear_sum_assignment vs POT emd (torchcfm OTPlanSampler.get_map)",
            "ours": f"{1000 * timing['ours_s'] / STEPS:.2f} ms/batch (CPU)",
            "peer": f"{1000 * timing['peer_s'] / STEPS:.2f} ms/batch (CPU)",
            "ratio": timing["ratio"],
            "target": "(diagnostic)",
            "spread_ms": _spread_ms(timing),
            "load": [before, _load()],
        }
    )
    return rows
