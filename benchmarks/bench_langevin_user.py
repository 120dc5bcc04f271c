"""Langevin on energies the library did not build (issue 19): ebm.sampling.langevin vs torchebm's
LangevinDynamics and vs a hand-written autograd loop, each pair interleaved in one process.

- a user-written module holding an MLP (d→128→128→1, SiLU) as a submodule, whose forward
  squeezes its (B, 1) output: 1024 chains × 200 steps at d = 2 and d = 32 (ours finds the
  Linear/activation chain by torch.fx and takes the fused gradient);
- a small conv energy on 28×28 images (1→16→32→64 channels, 3×3 stride-2 convs, SiLU, then
  Linear(1024, 1)): 128 chains × 60 steps, the JEM setting (fused through the conv layers);
- a residual MLP (not a chain: ours falls back to autograd with the weights frozen), d = 32;
- what ``compile=True`` costs on that residual MLP: the first call (compilation) and later calls.

The hand loop is what a user writes: x.requires_grad_(), autograd.grad of E.sum(), the update.
ratio = ours / peer time (lower is better). Each row records the 1-minute load average before
and after its comparison: the machine is shared, so read the ratios, not the absolute times.
"""

from __future__ import annotations

import math
import os
import statistics

import torch
from torch import nn

from benchmarks.bench_langevin import _ms, hand_loop, torchebm_sampler
from benchmarks.timing import compare, time_once
from ebm.sampling import langevin
from ebm.sampling._fused_grad import fused_chain


class UserMLP(nn.Module):
    """How users write an energy: an MLP submodule, the forward squeezes (B, 1) to (B,)."""

    def __init__(self, d: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


class ConvEnergy(nn.Module):
    """A small image energy: three stride-2 convs and a linear head, 28×28 -> (B,)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, 2, 1),
            nn.SiLU(),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


class ResidualMLP(nn.Module):
    """Not a chain (a skip connection): sampled through autograd."""

    def __init__(self, d: int, hidden: int = 128):
        super().__init__()
        self.inp, self.mid, self.out = (
            nn.Linear(d, hidden),
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        h = nn.functional.silu(self.inp(x))
        h = h + nn.functional.silu(self.mid(h))
        return self.out(h).squeeze(-1)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _pair(name, ours, peer, target, repeats=7):
    before = _load()
    r = compare(ours, peer, repeats=repeats, warmup=1)
    return {
        "name": name,
        "ours": _ms(r["ours_s"]),
        "peer": _ms(r["peer_s"]),
        "ratio": r["ratio"],
        "target": target,
        "load": [before, _load()],
    }


def _rows_for(label, energy, x0, n_steps, step, noise, torchebm_target):
    def ours():
        return langevin(energy, x0, n_steps, step, noise_scale=noise)

    rows = []
    peer = torchebm_sampler(energy, n_steps, step, noise)
    if peer is None:
        rows.append(
            {
                "name": f"{label} vs torchebm",
                "ours": "",
                "peer": "torchebm not installed",
                "ratio": float("nan"),
                "target": torchebm_target,
            }
        )
    else:
        rows.append(
            _pair(f"{label} vs torchebm LangevinDynamics", ours, lambda: peer(x0), torchebm_target)
        )
    rows.append(
        _pair(
            f"{label} vs hand loop with autograd.grad",
            ours,
            lambda: hand_loop(energy, x0, n_steps, step, noise),
            "<= 1 (never slower)",
        )
    )
    return rows


def run() -> list[dict]:
    torch.manual_seed(0)
    rows = []
    step = 0.01
    for d in (2, 32):
        energy = UserMLP(d)
        assert fused_chain(energy) is not None
        x0 = torch.randn(1024, d)
        rows += _rows_for(
            f"user MLP module d={d}, 1024 chains x 200 steps",
            energy,
            x0,
            200,
            step,
            math.sqrt(2 * step),
            "<= 0.67 (>= 1.5x faster)",
        )
    energy = ConvEnergy()
    assert fused_chain(energy) is not None
    x0 = torch.rand(128, 1, 28, 28)
    # JEM's image chains: step 1 on the energy, noise 0.01
    rows += _rows_for(
        "conv energy 28x28, 128 chains x 60 steps",
        energy,
        x0,
        60,
        1.0,
        0.01,
        "<= 0.83 (>= 1.2x faster)",
    )
    energy = ResidualMLP(32)
    assert fused_chain(energy) is None
    x0 = torch.randn(1024, 32)
    rows += _rows_for(
        "residual MLP d=32 (autograd path), 1024 chains x 200 steps",
        energy,
        x0,
        200,
        step,
        math.sqrt(2 * step),
        "",
    )
    # compile=True on the autograd-path energy: first call (compilation) and steady state
    before = _load()
    first = time_once(lambda: langevin(energy, x0, 200, step, compile=True))
    later = statistics.median(
        time_once(lambda: langevin(energy, x0, 200, step, compile=True)) for _ in range(3)
    )
    eager = statistics.median(time_once(lambda: langevin(energy, x0, 200, step)) for _ in range(3))
    rows.append(
        {
            "name": "residual MLP d=32, compile=True: first call / later calls vs eager",
            "ours": f"{_ms(first)} / {_ms(later)}",
            "peer": f"{_ms(eager)} (eager)",
            "ratio": later / eager,
            "target": "",
            "load": [before, _load()],
        }
    )
    return rows
