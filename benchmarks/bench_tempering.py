"""Parallel tempering: ebm.sampling.parallel_tempering (every replica of every chain as one
tensor, one energy-and-gradient evaluation per step) against a plain hand loop written here
(the same MALA moves and even-odd swaps, one replica at a time), and, at equal wall time,
against single-temperature MALA. No installed library (torchebm, Pyro) has replica exchange.

Target: p = 0.3·N(−4, 0.5²) + 0.7·N(4, 0.5²) on the line (a 32-nat wall between the modes),
every chain started in the light mode at −4; 7 temperatures 1, 1/2, …, 1/64, step 0.1.
Rows: (1) seconds for the same run (ratio = ours / hand loop, lower is better); (2) the error
|weight of the right mode − 0.7| at equal energy evaluations, ours against MALA with 7× the
chains (started in the light mode as ours, or spread uniformly over [−6, 6]), median over
repeats. Timings are taken on a shared machine under load (one thread).
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from benchmarks.timing import compare
from ebm.sampling import mala, parallel_tempering

BETAS = [0.5**k for k in range(7)]
N_CHAINS, N_STEPS, BURN, STEP, REPEATS = 200, 1000, 300, 0.1, 3


def two_wells(x: torch.Tensor) -> torch.Tensor:
    log_left = math.log(0.3) - 0.5 * ((x[:, 0] + 4) / 0.5) ** 2
    log_right = math.log(0.7) - 0.5 * ((x[:, 0] - 4) / 0.5) ** 2
    return -torch.logaddexp(log_left, log_right)


def _value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = two_wells(x)
        (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def hand_loop(x0: torch.Tensor, n_steps: int, generator: torch.Generator) -> torch.Tensor:
    """The textbook loop: for each step, a MALA move of each replica in turn, then a swap round
    on the even or odd pairs. Returns the β = 1 states (n_steps, n, 1)."""
    xs = [x0.clone() for _ in BETAS]
    eg = [_value_and_grad(x) for x in xs]
    out = torch.empty((n_steps, *x0.shape))
    for i in range(n_steps):
        for k, beta in enumerate(BETAS):
            h = STEP / beta
            x, (e, g) = xs[k], eg[k]
            noise = torch.randn(x.shape, generator=generator)
            prop = x - h * beta * g + math.sqrt(2 * h) * noise
            e2, g2 = _value_and_grad(prop)
            log_q_fwd = -(prop - x + h * beta * g).pow(2).sum(1) / (4 * h)
            log_q_bwd = -(x - prop + h * beta * g2).pow(2).sum(1) / (4 * h)
            log_a = beta * (e - e2) + log_q_bwd - log_q_fwd
            acc = torch.rand(x.shape[0], generator=generator).log() < log_a
            xs[k] = torch.where(acc[:, None], prop, x)
            eg[k] = (torch.where(acc, e2, e), torch.where(acc[:, None], g2, g))
        for k in range(i % 2, len(BETAS) - 1, 2):
            (ea, ga), (eb, gb) = eg[k], eg[k + 1]
            log_a = (BETAS[k] - BETAS[k + 1]) * (ea - eb)
            acc = torch.rand(ea.shape, generator=generator).log() < log_a
            m = acc[:, None]
            xs[k], xs[k + 1] = torch.where(m, xs[k + 1], xs[k]), torch.where(m, xs[k], xs[k + 1])
            eg[k], eg[k + 1] = (
                (torch.where(acc, eb, ea), torch.where(m, gb, ga)),
                (torch.where(acc, ea, eb), torch.where(m, ga, gb)),
            )
        out[i] = xs[0]
    return out


def _weight_error(samples: torch.Tensor) -> float:
    return abs(float((samples[BURN:, :, 0] > 0).float().mean()) - 0.7)


def run() -> list[dict]:
    x0 = torch.full((N_CHAINS, 1), -4.0)
    g = torch.Generator().manual_seed(0)
    timing = compare(
        lambda: parallel_tempering(two_wells, x0, BETAS, N_STEPS, STEP, generator=g),
        lambda: hand_loop(x0, N_STEPS, g),
        repeats=3,
        warmup=1,
    )
    hand_err = _weight_error(hand_loop(x0, N_STEPS, torch.Generator().manual_seed(1)))
    ours_err, mala_err, spread_err, ours_t = [], [], [], []
    wide = torch.full((N_CHAINS * len(BETAS), 1), -4.0)
    for r in range(REPEATS):
        start = time.perf_counter()
        samples, swaps = parallel_tempering(
            two_wells, x0, BETAS, N_STEPS, STEP, generator=torch.Generator().manual_seed(10 + r)
        )
        ours_t.append(time.perf_counter() - start)
        ours_err.append(_weight_error(samples))
        # MALA for as long: N_STEPS steps of 7x the chains, keeping every state (as PT keeps)
        gm = torch.Generator().manual_seed(20 + r)
        spread = -6.0 + 12.0 * torch.rand(wide.shape, generator=gm)  # uniform on [-6, 6]
        for start, sink in ((wide, mala_err), (spread, spread_err)):
            x, trace = start, torch.empty((N_STEPS, *wide.shape))
            for i in range(N_STEPS):
                x, _ = mala(two_wells, x, 1, STEP, generator=gm)
                trace[i] = x
            sink.append(_weight_error(trace))
    ours, peer = statistics.median(ours_err), statistics.median(mala_err)
    return [
        {
            "name": f"parallel tempering, 7 temperatures x {N_CHAINS} chains x {N_STEPS} MALA "
            "steps, 1-D two-well mixture (median of 3)",
            "ours": f"{timing['ours_s']:.2f} s (one batched tensor)",
            "peer": f"{timing['peer_s']:.2f} s (hand loop, one replica at a time; its weight "
            f"error {hand_err:.4f})",
            "ratio": timing["ratio"],
            "target": "< 1 (faster at equal work)",
            "ours_s": timing["ours_s"],
            "peer_s": timing["peer_s"],
            "hand_loop_weight_error": hand_err,
        },
        {
            "name": f"mode-weight error abs(w - 0.7), chains started in the 0.3 mode, "
            f"{N_STEPS} steps, the first {BURN} dropped, equal energy evaluations "
            f"(median of {REPEATS})",
            "ours": f"{ours:.4f} (parallel tempering, {N_CHAINS} chains, "
            f"{statistics.median(ours_t):.2f} s; swap acceptance "
            f"{min(swaps.tolist()):.2f}-{max(swaps.tolist()):.2f})",
            "peer": f"{peer:.4f} (MALA, {N_CHAINS * len(BETAS)} chains; started uniformly on "
            f"[-6, 6] instead: {statistics.median(spread_err):.4f})",
            "ratio": ours / peer,
            "target": "< 1 (and < 0.02, issue 15)",
            "ours_errors": ours_err,
            "peer_errors": mala_err,
            "peer_spread_start_errors": spread_err,
            "ours_seconds": ours_t,
            "swap_acceptance": swaps.tolist(),
        },
    ]
