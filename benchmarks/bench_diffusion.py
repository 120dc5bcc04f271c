"""Diffusion (issue 18, item 4): ``ebm.models.Diffusion``'s training step and its three samplers
against a hand loop written from the DDPM equations and against diffusers' schedulers, all with
the same network (our model's ``net`` and time features, so the weights are equal) and the same
schedule (linear β from 1e-4 to 0.02, T = 1000), interleaved in one process.

- training step: the ε-prediction loss of one batch (t ~ U{1..T}, ε ~ N(0, I)) and its backward
  pass; the hand loop draws t and ε from the same seed (the losses are checked equal), diffusers
  noises the batch with ``DDPMScheduler.add_noise``.
- ancestral sampling: the DDPM reverse chain, T network calls. The hand loop draws x_T and the
  chain's noise like ours from the same generator, and its samples are checked equal to ours to
  rounding (not timed; relative to the samples' scale, which is large for an untrained network). diffusers' ``DDPMScheduler.step`` (variance "fixed_small", the same
  β̃_t; no clipping) draws its noise step by step, so its samples differ: timed only.
- ODE sampling: the probability-flow ODE, adaptive dopri5 (rtol = atol = 1e-5). The hand loop
  is the same ODE in DDIM's variables written on ``torchdiffeq.odeint`` (same solver; the number
  of network evaluations of each is recorded; samples checked equal up to the solver's tolerance,
  as ours sums the first layer in another order). diffusers has no adaptive ODE sampler: until
  ``method="ddim"`` existed its row was ``DDIMScheduler`` at as many steps as our solve made
  network calls, which compared integrators (dopri5 against Euler), not implementations.
- DDIM sampling (eta = 0): ``method="ddim"`` against diffusers' ``DDIMScheduler`` at equal steps
  (50, diffusers' default, and 500, about the ODE solve's network calls). diffusers is set to
  our grid (``timestep_spacing="trailing"``, ``set_alpha_to_one=True``; the step counts divide T,
  where its "trailing" list and its step agree) and its samples are checked equal to ours up to
  float32 rounding (it computes ᾱ in float32, ours in float64; relative gap recorded).

ratio = ours / peer time (lower is better). Each row records the quartiles of its repeats and
the 1-minute load average before → after its pair.
"""

from __future__ import annotations

import math
import os

import torch

from benchmarks.timing import compare, spread
from ebm.models import Diffusion

DIM, HIDDEN, T, BATCH, N_SAMPLES = 2, (128, 128, 128), 1000, 512, 1000


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _schedule():
    """The DDPM linear schedule from the paper, computed once (float64, then float32)."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return betas.float(), torch.cumprod(1 - betas, 0)


def _eps(model: Diffusion):
    """ε_θ(x, t) written by hand with the model's own network and time features."""
    net, freqs = model.net, model.freqs

    def eps(x, t):
        angles = t.to(x.dtype).unsqueeze(1) * freqs
        return net(torch.cat([x, angles.sin(), angles.cos()], dim=1))

    return eps


def hand_training_step(eps, alpha_bars, x0):
    t = torch.randint(1, T + 1, (len(x0),))
    noise = torch.randn_like(x0)
    ab = alpha_bars[t - 1].unsqueeze(1).to(x0.dtype)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return (eps(x_t, t) - noise).pow(2).mean()


def hand_ancestral(eps, betas, alpha_bars, n, generator):
    """x_{t−1} = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t + √β̃_t z, β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t)."""
    x = torch.randn(n, DIM, generator=generator)
    noise = torch.randn((T, n, DIM), generator=generator)
    betas = betas.double()
    ab_prev = torch.cat([torch.ones(1, dtype=alpha_bars.dtype), alpha_bars[:-1]])
    c_eps = (betas / (1 - alpha_bars).sqrt()).tolist()
    c_x = (1 / (1 - betas).sqrt()).tolist()
    sigma = (betas * (1 - ab_prev) / (1 - alpha_bars)).sqrt().tolist()
    steps = [torch.full((n,), t) for t in range(T + 1)]
    with torch.no_grad():
        for t in range(T, 0, -1):
            x = (x - c_eps[t - 1] * eps(x, steps[t])) * c_x[t - 1]
            if t > 1:
                x = x + sigma[t - 1] * noise[t - 1]
    return x


def hand_ode(eps, alpha_bars, n, generator, counter=None):
    """dy/d(log σ) = σ ε_θ(y/√(1+σ²), t(σ)), y = x/√ᾱ, σ = √((1−ᾱ)/ᾱ), on torchdiffeq's dopri5,
    from σ_T to σ_1, then below step 1 with the score held at step 1: dy/dτ = ε_θ(y/√(1+σ_1²), 1)
    for τ = σ²/(2σ_1) from σ_1/2 to 0 (a second dopri5 solve)."""
    from torchdiffeq import odeint

    ab = alpha_bars.double()  # the σ table from float64 ᾱ (float32 ᾱ loses 1 − ᾱ near t = 1)
    log_s = (0.5 * ((1 - ab) / ab).log()).float()
    x_T = torch.randn(n, DIM, generator=generator)

    def step_of(s):  # the fractional step whose log σ is s (linear interpolation)
        i = torch.searchsorted(log_s, s.reshape(1)).clamp(1, T - 1)
        return (i + (s - log_s[i - 1]) / (log_s[i] - log_s[i - 1])).clamp(1, T)

    def field(s, y):
        if counter is not None:
            counter[0] += 1
        sigma = s.exp()
        return sigma * eps(y / (1 + sigma**2).sqrt(), step_of(s).expand(len(y)))

    with torch.no_grad():
        y_T = x_T * (1 + log_s[-1].exp() ** 2).sqrt()
        span = torch.stack([log_s[-1], log_s[0]])
        y_1 = odeint(field, y_T, span, rtol=1e-5, atol=1e-5, method="dopri5")[-1]
        sigma_1 = log_s[0].exp()
        k_1 = 1 / (1 + sigma_1**2).sqrt()

        def held(tau, y):
            if counter is not None:
                counter[0] += 1
            return eps(k_1 * y, torch.ones(n))

        span = torch.stack([sigma_1 / 2, torch.zeros_like(sigma_1)])
        return odeint(held, y_1, span, rtol=1e-5, atol=1e-5, method="dopri5")[-1]


def _diffusers():
    try:
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError:
        return None
    common = {
        "num_train_timesteps": T,
        "beta_start": 1e-4,
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "clip_sample": False,
        "prediction_type": "epsilon",
    }
    return (
        DDPMScheduler(variance_type="fixed_small", **common),
        DDIMScheduler(set_alpha_to_one=True, timestep_spacing="trailing", **common),
    )


def diffusers_training_step(eps, scheduler, x0):
    # diffusers' timesteps are 0..T−1 where ours are 1..T: the network sees ours
    t = torch.randint(1, T + 1, (len(x0),))
    noise = torch.randn_like(x0)
    x_t = scheduler.add_noise(x0, noise, t - 1)
    return (eps(x_t, t) - noise).pow(2).mean()


def diffusers_sample(eps, scheduler, n, generator, n_steps=None):
    scheduler.set_timesteps(n_steps or T)
    x = torch.randn(n, DIM, generator=generator)
    kwargs = {"generator": generator} if n_steps is None else {"eta": 0.0}
    with torch.no_grad():
        for t in scheduler.timesteps:
            e = eps(x, torch.full((n,), int(t) + 1))
            x = scheduler.step(e, t, x, **kwargs).prev_sample
    return x


def _row(name, ours, peer, target, repeats, unit="ms", **extra) -> dict:
    before = _load()
    r = compare(ours, peer, repeats=repeats, warmup=1)
    q_ours, q_peer = spread(r["ours_times"]), spread(r["peer_times"])
    return {
        "name": name,
        "ours": f"{1000 * r['ours_s']:.1f} ms",
        "peer": f"{1000 * r['peer_s']:.1f} ms",
        "ratio": r["ratio"],
        "target": target,
        "spread_ms": {
            "ours": [round(1000 * q, 2) for q in q_ours],
            "peer": [round(1000 * q, 2) for q in q_peer],
        },
        **extra,
        "load": [before, _load()],
    }


def _relative_gap(a, b) -> float:
    """max |a − b| / max |b|: the untrained network's samples are large, so read it relatively."""
    return ((a - b).abs().max() / b.abs().max()).item()


def _missing(name: str) -> dict:
    return {
        "name": name,
        "ours": "",
        "peer": "diffusers not installed (pip install --no-deps diffusers)",
        "ratio": float("nan"),
        "target": "<= 1",
    }


def run() -> list[dict]:
    torch.manual_seed(0)
    model = Diffusion(DIM, hidden=HIDDEN, T=T)
    eps = _eps(model)
    betas, alpha_bars = _schedule()
    assert torch.equal(betas, model.betas) and torch.equal(alpha_bars.float(), model.alpha_bars)
    x0 = torch.randn(BATCH, DIM, generator=torch.Generator().manual_seed(1))
    schedulers = _diffusers()
    rows = []

    # ---- training step ----------------------------------------------------------------------
    def train(loss_fn):
        def step():
            model.zero_grad(set_to_none=True)
            torch.manual_seed(3)  # t and ε: the same draws on every side
            loss = loss_fn()
            loss.backward()
            return loss

        return step

    ours_train = train(lambda: model.training_step(x0))
    hand_train = train(lambda: hand_training_step(eps, alpha_bars, x0))
    loss_ours, loss_hand = ours_train().item(), hand_train().item()
    assert math.isclose(loss_ours, loss_hand, rel_tol=1e-5), (loss_ours, loss_hand)
    label = f"diffusion training step (batch {BATCH}, d={DIM}, MLP {HIDDEN}, T={T})"
    rows.append(_row(f"{label} vs hand loop", ours_train, hand_train, "<= 1", 31))
    if schedulers is None:
        rows.append(_missing(f"{label} vs diffusers DDPMScheduler.add_noise"))
    else:
        peer_train = train(lambda: diffusers_training_step(eps, schedulers[0], x0))
        loss_peer = peer_train().item()
        assert math.isclose(loss_ours, loss_peer, rel_tol=1e-4), (loss_ours, loss_peer)
        rows.append(
            _row(
                f"{label} vs diffusers DDPMScheduler.add_noise", ours_train, peer_train, "<= 1", 31
            )
        )

    # ---- ancestral sampling -----------------------------------------------------------------
    def gen():
        return torch.Generator().manual_seed(5)

    def ours_ancestral():
        return model.sample(N_SAMPLES, generator=gen())

    def hand_ancestral_run():
        return hand_ancestral(eps, betas, alpha_bars, N_SAMPLES, gen())

    gap = _relative_gap(ours_ancestral(), hand_ancestral_run())
    assert gap < 1e-5, gap  # float32 rounding, amplified by the chain's 1/√α_t factors
    label = f"diffusion ancestral sampling, {N_SAMPLES} samples x {T} steps"
    rows.append(
        _row(
            f"{label} vs hand loop",
            ours_ancestral,
            hand_ancestral_run,
            "<= 1",
            5,
            relative_sample_gap=gap,
        )
    )
    if schedulers is None:
        rows.append(_missing(f"{label} vs diffusers DDPMScheduler"))
    else:
        rows.append(
            _row(
                f"{label} vs diffusers DDPMScheduler.step",
                ours_ancestral,
                lambda: diffusers_sample(eps, schedulers[0], N_SAMPLES, gen()),
                "<= 1",
                5,
            )
        )

    # ---- probability-flow ODE ----------------------------------------------------------------
    def ours_ode():
        return model.sample(N_SAMPLES, method="ode", generator=gen())

    counter = [0]
    hand = hand_ode(eps, alpha_bars, N_SAMPLES, gen(), counter)
    nfe_hand = counter[0]  # both solves
    calls = [0]
    hook = model.net[-1].register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        samples = ours_ode()
    finally:
        hook.remove()
    nfe = calls[0]
    # ours takes the time features as a bias (another summation order), so the adaptive
    # solver's steps differ by rounding: equal up to about rtol times the samples' scale
    gap = _relative_gap(samples, hand)
    assert gap < 1e-3, gap
    label = f"diffusion ODE sampling (dopri5, rtol=atol=1e-5, {nfe} NFE), {N_SAMPLES} samples"
    rows.append(
        _row(
            f"{label} vs hand torchdiffeq loop",
            ours_ode,
            lambda: hand_ode(eps, alpha_bars, N_SAMPLES, gen()),
            "<= 1",
            7,
            nfe={"ours": nfe, "peer": nfe_hand},
            relative_sample_gap=gap,
        )
    )

    # ---- DDIM, eta = 0 -------------------------------------------------------------------------
    for n_steps, repeats in ((50, 15), (500, 7)):

        def ours_ddim(n_steps=n_steps):
            return model.sample(N_SAMPLES, method="ddim", n_steps=n_steps, generator=gen())

        label = f"diffusion DDIM sampling (eta=0), {N_SAMPLES} samples x {n_steps} steps"
        if schedulers is None:
            rows.append(_missing(f"{label} vs diffusers DDIMScheduler"))
            continue

        def peer_ddim(n_steps=n_steps):
            return diffusers_sample(eps, schedulers[1], N_SAMPLES, gen(), n_steps=n_steps)

        gap = _relative_gap(ours_ddim(), peer_ddim())
        assert gap < 1e-3, gap  # float32 ᾱ (diffusers) against float64 ᾱ (ours), amplified
        rows.append(
            _row(
                f"{label} vs diffusers DDIMScheduler (trailing spacing, same steps)",
                ours_ddim,
                peer_ddim,
                "<= 1",
                repeats,
                relative_sample_gap=gap,
            )
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
