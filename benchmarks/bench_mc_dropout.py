"""MC dropout prediction, T = 100 passes on 1000 points, for the notes' net (ch. 42).

ours: ``MCDropout.predict`` (one batched, chunked pass with 16-bit masks).
peers: 100 deterministic (eval-mode) forward passes, the arithmetic limit (target ≤ 2×), and
the notes' loop of 100 train-mode passes (about 3.8× reported; ours should beat it).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.timing import compare
from ebm.bayes import MCDropout, notes_regression_net

T, N = 100, 1000


def _notes_net(activation) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return notes_regression_net(activation)


def _rows(name: str, activation, x: torch.Tensor) -> list[dict]:
    net = _notes_net(activation)
    mc = MCDropout(net, n_samples=T, seed=0)

    def ours():
        return mc.predict(x)

    @torch.no_grad()
    def deterministic():
        net.eval()
        return [net(x) for _ in range(T)]

    @torch.no_grad()
    def notes_loop():
        net.train()
        out = torch.stack([net(x) for _ in range(T)])
        net.eval()
        return out.mean(0), out.var(0)

    vs_det = compare(ours, deterministic, repeats=21, warmup=3)
    vs_loop = compare(ours, notes_loop, repeats=21, warmup=3)
    return [
        {
            "name": f"MC dropout T={T}, {N} points, {name}: vs {T} eval-mode passes",
            "ours": f"{vs_det['ours_s'] * 1e3:.1f} ms",
            "peer": f"{vs_det['peer_s'] * 1e3:.1f} ms (deterministic)",
            "ratio": vs_det["ratio"],
            "target": "<= 2",
        },
        {
            "name": f"MC dropout T={T}, {N} points, {name}: vs the notes' train-mode loop",
            "ours": f"{vs_loop['ours_s'] * 1e3:.1f} ms",
            "peer": f"{vs_loop['peer_s'] * 1e3:.1f} ms (loop)",
            "ratio": vs_loop["ratio"],
            "target": "< 1 (the loop costs ≈ 3.8× deterministic)",
        },
    ]


def run() -> list[dict]:
    x = torch.linspace(-15, 15, N).view(-1, 1)
    return _rows("tanh", nn.Tanh, x) + _rows("relu", nn.ReLU, x)
