"""Langevin throughput: ebm.sampling.langevin vs torchebm's LangevinDynamics and vs an unfused
hand loop with autograd.grad, on the same MLP energy (d→128→128→1, SiLU), 1024 chains × 200 steps,
at d = 2 and d = 32; then how our time scales with the number of chains and the dimension.

Ours takes the fused MLP input gradient (one forward sweep, one backward sweep of matrix products,
fused activation derivatives), preallocated noise and in-place updates. ratio = ours / peer time
(lower is better); the target is ≤ 1/1.5 = 0.67 against torchebm.
"""

from __future__ import annotations

import math
import statistics

import torch

from benchmarks.timing import compare, time_once
from ebm.energies import MLPEnergy
from ebm.sampling import langevin

N_CHAINS, N_STEPS, STEP = 1024, 200, 0.01


def hand_loop(energy, x0, n_steps=N_STEPS, step=STEP, noise=None):
    """Unadjusted Langevin by autograd.grad, one step at a time (noise: the std added per step,
    √(2·step) by default)."""
    noise = math.sqrt(2 * step) if noise is None else noise
    x = x0.clone()
    for _ in range(n_steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        x = x - step * grad + noise * torch.randn_like(x)
    return x.detach()


def torchebm_sampler(energy, n_steps=N_STEPS, step=STEP, noise=None):
    """torchebm's LangevinDynamics on ``energy`` with the same update as ``hand_loop``, as a
    function x0 -> samples; None when torchebm is not installed."""
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError:
        return None

    class Wrapped(BaseModel):
        def __init__(self):
            super().__init__()
            self.energy = energy

        def forward(self, x):
            return self.energy(x)

    # torchebm's update is x − step·∇E + noise_scale·√(2·step)·ε
    noise_scale = 1.0 if noise is None else noise / math.sqrt(2 * step)
    sampler = LangevinDynamics(Wrapped(), step_size=step, noise_scale=noise_scale)
    return lambda x0: sampler.sample(x=x0.clone(), n_steps=n_steps)


def _ms(seconds):
    return f"{1000 * seconds:.0f} ms"


def run() -> list[dict]:
    torch.manual_seed(0)
    rows = []
    for d in (2, 32):
        energy = MLPEnergy(d, hidden=(128, 128))
        x0 = torch.randn(N_CHAINS, d)

        def ours(energy=energy, x0=x0):
            return langevin(energy, x0, N_STEPS, STEP)

        peer = torchebm_sampler(energy)
        if peer is None:
            rows.append(
                {
                    "name": f"langevin d={d} vs torchebm",
                    "ours": "",
                    "peer": "torchebm not installed",
                    "ratio": float("nan"),
                    "target": "<= 0.67",
                }
            )
        else:
            r = compare(ours, lambda peer=peer, x0=x0: peer(x0), repeats=7, warmup=1)
            rows.append(
                {
                    "name": f"langevin d={d}, {N_CHAINS} chains x {N_STEPS} steps vs torchebm LangevinDynamics",
                    "ours": _ms(r["ours_s"]),
                    "peer": _ms(r["peer_s"]),
                    "ratio": r["ratio"],
                    "target": "<= 0.67 (>= 1.5x faster)",
                }
            )
        r = compare(ours, lambda energy=energy, x0=x0: hand_loop(energy, x0), repeats=7, warmup=1)
        rows.append(
            {
                "name": f"langevin d={d} vs hand loop with autograd.grad",
                "ours": _ms(r["ours_s"]),
                "peer": _ms(r["peer_s"]),
                "ratio": r["ratio"],
                "target": "< 1",
            }
        )
    # scaling of our sampler with the number of chains and the dimension
    for n, d in ((256, 2), (1024, 2), (4096, 2), (1024, 8), (1024, 32), (1024, 128)):
        energy = MLPEnergy(d, hidden=(128, 128))
        x0 = torch.randn(n, d)
        langevin(energy, x0, N_STEPS, STEP)  # warm-up
        seconds = statistics.median(
            time_once(lambda energy=energy, x0=x0: langevin(energy, x0, N_STEPS, STEP))
            for _ in range(3)
        )
        rows.append(
            {
                "name": f"scaling: {n} chains, d={d}",
                "ours": f"{_ms(seconds)} ({n * N_STEPS / seconds / 1e6:.2f} M chain-steps/s)",
                "peer": "",
                "ratio": float("nan"),
                "target": "",
            }
        )
    return rows
