"""nll_loss against torch's fused F.cross_entropy on (65536, 10) energies: the same quantity
(nll_loss(E, y) = cross_entropy(−E, y)), so ours should cost at most 1.2× theirs.

Ours includes its input validation (shapes, dtypes, the target-range check on CPU) and the
negation of E; the peer gets ready-made logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.timing import compare
from ebm.losses import nll_loss

SHAPE = (65536, 10)
TARGET = 1.2


def _row(name: str, timing: dict) -> dict:
    return {
        "name": name,
        "ours": f"{timing['ours_s'] * 1e3:.2f} ms",
        "peer": f"{timing['peer_s'] * 1e3:.2f} ms (F.cross_entropy)",
        "ratio": timing["ratio"],
        "target": f"<= {TARGET}",
    }


def run(repeats: int = 31) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    energies = torch.randn(*SHAPE, generator=g)
    target = torch.randint(0, SHAPE[1], (SHAPE[0],), generator=g)
    E = energies.clone().requires_grad_(True)
    logits = (-energies).requires_grad_(True)

    def ours_backward():
        nll_loss(E, target).backward()

    def peer_backward():
        F.cross_entropy(logits, target).backward()

    def ours_forward():
        with torch.no_grad():
            nll_loss(E, target)

    def peer_forward():
        with torch.no_grad():
            F.cross_entropy(logits, target)

    with torch.no_grad():  # same quantity, or the comparison means nothing
        torch.testing.assert_close(nll_loss(E, target), F.cross_entropy(logits, target))
    rows = [
        _row(f"nll_loss forward+backward {SHAPE}", compare(ours_backward, peer_backward, repeats)),
        _row(f"nll_loss forward {SHAPE}", compare(ours_forward, peer_forward, repeats)),
    ]
    E.grad = logits.grad = None
    return rows
