"""AIS: error in log Z at equal wall time, ebm.sampling.ais (all chains as one tensor) against a
plain reference loop written here (one chain at a time, a Python loop over the temperatures,
the same tempered MALA kernel with a fixed step and autograd gradients).

Target: N(μ, Σ) with a random full covariance at d = 16, closed-form log Z. Ours runs 256
chains × 1000 temperatures; the reference gets the same wall time (measured on the run just
before it, interleaved) and runs as many 1000-temperature chains as fit. ebmkit's AIS, the
natural peer, also imports as ``ebm``: it is not measured here.
ratio = our |error| / the reference's |error| (median over repeats; lower is better).
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from ebm.energies import GaussianEnergy
from ebm.sampling import ais

D, N_CHAINS, N_TEMPS, STEP, REPEATS = 16, 256, 1000, 0.1, 3


def _target(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mean = 0.5 * torch.randn(D, generator=g, dtype=torch.float64)
    a = torch.randn(D, D, generator=g, dtype=torch.float64) / math.sqrt(D)
    cov = 0.5 * a @ a.T + 0.5 * torch.eye(D, dtype=torch.float64)
    log_z = 0.5 * D * math.log(2 * math.pi) + 0.5 * float(torch.logdet(cov))
    return GaussianEnergy(mean, cov), log_z


def _reference_chain(energy, generator) -> float:
    """One AIS chain: base N(0, I), linear temperatures, one MALA step per temperature."""
    x = torch.randn(1, D, generator=generator, dtype=torch.float64)
    w = 0.0

    def tempered(z, beta):
        z = z.detach().requires_grad_(True)
        e = beta * energy(z) + (1 - beta) * 0.5 * z.pow(2).sum(1)
        (g,) = torch.autograd.grad(e.sum(), z)
        return e.detach(), g

    for k in range(1, N_TEMPS + 1):
        b0, b1 = (k - 1) / N_TEMPS, k / N_TEMPS
        with torch.no_grad():
            w += (b1 - b0) * float(0.5 * x.pow(2).sum() - energy(x).sum())
        if k == N_TEMPS:
            break
        e, g = tempered(x, b1)
        prop = (
            x
            - STEP * g
            + math.sqrt(2 * STEP) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        )
        e2, g2 = tempered(prop, b1)
        log_q_fwd = -(prop - x + STEP * g).pow(2).sum() / (4 * STEP)
        log_q_bwd = -(x - prop + STEP * g2).pow(2).sum() / (4 * STEP)
        log_a = float(e - e2 + log_q_bwd - log_q_fwd)
        if math.log(float(torch.rand((), generator=generator, dtype=x.dtype))) < log_a:
            x = prop
    return w


def _reference(energy, seconds: float, generator) -> tuple[float, int]:
    """log Z from as many reference chains as fit in ``seconds`` (at least 2)."""
    weights, start = [], time.perf_counter()
    while len(weights) < 2 or time.perf_counter() - start < seconds:
        weights.append(_reference_chain(energy, generator))
    w = torch.tensor(weights, dtype=torch.float64)
    log_z0 = 0.5 * D * math.log(2 * math.pi)
    return log_z0 + float(torch.logsumexp(w, 0)) - math.log(len(w)), len(w)


def run() -> list[dict]:
    energy, log_z = _target()
    ours_err, ref_err, ours_t, ref_chains = [], [], [], []
    for r in range(REPEATS):
        start = time.perf_counter()
        est = ais(energy, D, N_CHAINS, N_TEMPS, generator=torch.Generator().manual_seed(r))
        seconds = time.perf_counter() - start
        ref, n = _reference(energy, seconds, torch.Generator().manual_seed(100 + r))
        ours_err.append(abs(float(est.log_z) - log_z))
        ref_err.append(abs(ref - log_z))
        ours_t.append(seconds)
        ref_chains.append(n)
    ours, peer = statistics.median(ours_err), statistics.median(ref_err)
    return [
        {
            "name": f"AIS log Z abs. error, N(mu, Sigma) d={D}, {N_TEMPS} temperatures, equal wall "
            f"time (median of {REPEATS})",
            "ours": f"{ours:.4f} nats ({N_CHAINS} chains in {statistics.median(ours_t):.2f} s)",
            "peer": f"{peer:.4f} nats (reference loop: {statistics.median(ref_chains)} chains "
            "in the same time)",
            "ratio": ours / peer,
            "target": "< 1 (lower error at equal time)",
            "ours_errors": ours_err,
            "peer_errors": ref_err,
            "ours_seconds": ours_t,
            "peer_chains": ref_chains,
        }
    ]
