"""Diffusion: the schedule check, closed-form forward marginals, the samplers driven by the exact
ε of Gaussian data, a small trained model's mode fractions, and the probability-flow likelihood
(log_prob: closed form, grid integral, invertibility, divergence estimators, bad inputs)."""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch

from ebm.inference.ode import StepBudgetExceeded
from ebm.models import Diffusion
from ebm.models.diffusion import check_schedule, cosine_schedule, linear_schedule


def test_warwick_schedule_is_rejected_and_defaults_reach_noise():
    warwick = linear_schedule(50, 1e-4, 0.02)
    alpha_bar_T = float(torch.prod(1 - warwick))
    assert 0.55 < alpha_bar_T < 0.65  # the tutorial's x_T is far from N(0, 1)
    with pytest.raises(ValueError, match="alpha_bar_T"):
        check_schedule(warwick)
    with pytest.raises(ValueError, match="alpha_bar_T"):
        Diffusion(1, T=50)
    for betas in (linear_schedule(1000), cosine_schedule(1000)):
        assert float(torch.prod(1 - betas)) < 1e-4
    assert float(Diffusion(1).alpha_bars[-1]) < 1e-4


def test_forward_marginals_match_the_step_by_step_chain():
    model = Diffusion(1, T=200, schedule="cosine")
    g = torch.Generator().manual_seed(0)
    which = torch.rand(20000, 1, generator=g) < 0.7
    x0 = torch.where(which, -0.75, 0.75) + 0.05 * torch.randn(20000, 1, generator=g)
    x = x0.double()
    for t in range(1, model.T + 1):
        beta = model.betas[t - 1].double()
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=g, dtype=x.dtype)
        if t in (10, 50, 120, 200):
            ab = model.alpha_bars[t - 1].double()
            # closed form: mean √ᾱ E[x0], variance ᾱ Var[x0] + 1 − ᾱ
            torch.testing.assert_close(x.mean(), ab.sqrt() * x0.double().mean(), atol=0.02, rtol=0)
            expected_var = ab * x0.double().var() + 1 - ab
            torch.testing.assert_close(x.var(), expected_var, atol=0.03, rtol=0.03)
            closed = model.q_sample(x0, torch.full((20000,), t), torch.randn(20000, 1, generator=g))
            torch.testing.assert_close(closed.double().var(), expected_var, atol=0.03, rtol=0.03)


class _ExactGaussianDiffusion(Diffusion):
    """ε_θ replaced by the exact E[ε | x_t] of data N(m, s²):
    √(1−ᾱ)(x − √ᾱ m)/(ᾱ s² + 1 − ᾱ), with ᾱ at fractional steps from the log σ table."""

    m, s = 1.5, 0.3

    def eps_model(self, x, t):
        table = self.log_sigmas.double()
        t = t.double().clamp(1, self.T)
        i = t.floor().long().clamp(max=self.T - 1)
        log_sigma = table[i - 1] + (t - i) * (table[i] - table[i - 1])
        ab = (1 / (1 + (2 * log_sigma).exp())).to(x.dtype).unsqueeze(1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.m) / (ab * self.s**2 + 1 - ab)


@pytest.mark.parametrize("method", ["ancestral", "ode"])
def test_samplers_with_the_exact_noise_predictor_recover_the_data(method):
    model = _ExactGaussianDiffusion(1, hidden=(4,), T=300, schedule="cosine")
    x = model.sample(4000, method=method, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x.mean(), torch.tensor(model.m), atol=0.02, rtol=0)
    torch.testing.assert_close(x.std(), torch.tensor(model.s), atol=0.02, rtol=0)


class _ExactWarwickDiffusion(_ExactGaussianDiffusion):
    """The exact ε of the Warwick mixture 0.7·N(−0.75, 0.05²) + 0.3·N(0.75, 0.05²):
    ε* = −√(1−ᾱ) ∇log p_t(x), p_t the mixture of N(√ᾱ m_k, ᾱ s² + 1 − ᾱ)."""

    def eps_model(self, x, t):
        table = self.log_sigmas.double()
        t = t.double().clamp(1, self.T)
        i = t.floor().long().clamp(max=self.T - 1)
        log_sigma = table[i - 1] + (t - i) * (table[i] - table[i - 1])
        ab = (1 / (1 + (2 * log_sigma).exp())).unsqueeze(1)
        means = torch.tensor([-0.75, 0.75], dtype=ab.dtype) * ab.sqrt()  # (B, 2)
        var = ab * 0.05**2 + 1 - ab
        logw = torch.tensor([0.7, 0.3], dtype=ab.dtype).log()
        log_comp = logw - 0.5 * (x.double() - means) ** 2 / var
        resp = torch.softmax(log_comp, dim=1)
        score = (resp * (means - x.double()) / var).sum(1, keepdim=True)
        return (-(1 - ab).sqrt() * score).to(x.dtype)


@pytest.mark.parametrize("method", ["ancestral", "ode"])
def test_samplers_with_the_exact_noise_predictor_keep_the_warwick_mode_weights(method):
    model = _ExactWarwickDiffusion(1, hidden=(4,), T=1000)
    x = model.sample(4000, method=method, generator=torch.Generator().manual_seed(4))
    left = float(((x + 0.75).abs() < 0.25).float().mean())
    right = float(((x - 0.75).abs() < 0.25).float().mean())
    assert abs(left - 0.70) < 0.025 and left + right > 0.99


def test_ode_sampler_is_deterministic_and_ancestral_trajectory_has_all_steps():
    model = _ExactGaussianDiffusion(1, hidden=(4,), T=100, schedule="cosine")
    z = torch.Generator().manual_seed(2)
    a = model.sample(50, method="ode", generator=z)
    b = model.sample(50, method="ode", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    x, path = model.sample(30, return_trajectory=True)
    assert path.shape == (101, 30, 1) and torch.equal(path[-1], x)


@pytest.mark.slow
def test_trained_model_reproduces_the_warwick_mode_fractions():
    from ebm.train import Trainer

    g = torch.Generator().manual_seed(0)
    which = torch.rand(20000, 1, generator=g) < 0.7
    data = torch.where(which, -0.75, 0.75) + 0.05 * torch.randn(20000, 1, generator=g)
    model = Diffusion(1, hidden=(128, 128), lr=2e-3)  # T = 1000, linear β up to 0.02
    trainer = Trainer(
        max_epochs=None,
        max_steps=6000,
        batch_size=512,
        device="cpu",
        seed=0,
        ema_decay=0.999,
        progress=False,
        log_every_n_steps=None,
    ).fit(model, data)
    trainer.ema.copy_to(model)
    for method in ("ancestral", "ode"):
        x = model.sample(2000, method=method, generator=torch.Generator().manual_seed(3))
        near_left = float(((x + 0.75).abs() < 0.25).float().mean())
        near_right = float(((x - 0.75).abs() < 0.25).float().mean())
        assert abs(near_left - 0.70) < 0.03 and near_left + near_right > 0.95


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="schedule"):
        Diffusion(1, schedule="quadratic")
    with pytest.raises(ValueError, match="betas"):
        check_schedule(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="method"):
        Diffusion(1, T=100, schedule="cosine").sample(4, method="euler")


def test_diffusion_ode_sampler_has_the_budget():
    model = Diffusion(1, hidden=(8,), T=100, schedule="cosine")
    with pytest.raises(StepBudgetExceeded, match="max_num_steps=2"):
        model.sample(4, method="ode", max_num_steps=2)
    for kwargs, name in (
        ({"max_num_steps": 0}, "max_num_steps"),
        ({"rtol": float("nan")}, "rtol"),
        ({"atol": -1.0}, "atol"),
    ):
        with pytest.raises(ValueError, match=name):
            model.sample(4, method="ode", **kwargs)


@pytest.mark.parametrize(
    "fn, kwargs, name",
    [
        (linear_schedule, {"T": 2.5}, "T"),
        (linear_schedule, {"T": 10, "beta_start": float("nan")}, "beta_start"),
        (linear_schedule, {"T": 10, "beta_end": 1.5}, "beta_end"),
        (cosine_schedule, {"T": 10, "s": -1.0}, "s must"),
        (cosine_schedule, {"T": 10, "max_beta": float("inf")}, "max_beta"),
        (check_schedule, {"betas": [0.5, float("nan")]}, "betas contains"),
        (check_schedule, {"betas": [0.5] * 20, "max_alpha_bar_T": float("nan")}, "max_alpha_bar_T"),
    ],
)
def test_schedules_validate_their_arguments_by_name(fn, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fn(**kwargs)


def test_model_settings_are_validated_before_any_work():
    for kwargs, name in (
        ({"dim": 2.5}, "dim"),
        ({"hidden": (8, 0)}, r"hidden\[1\]"),
        ({"time_features": 0}, "time_features"),
        ({"lr": float("nan"), "T": 50}, "lr"),  # before the schedule (which would fail too)
        ({"T": "1000"}, "T"),
    ):
        with pytest.raises(ValueError, match=name):
            Diffusion(**{"dim": 1, **kwargs})
    model = Diffusion(1, hidden=(8,), betas=[0.5] * 20)  # an array-like schedule
    assert model.T == 20 and model.betas.dtype == torch.float32
    with pytest.raises(ValueError, match="return_trajectory"):
        model.sample(2, return_trajectory="yes")
    for n in (0, 2.5, "2"):
        with pytest.raises(ValueError, match="n must"):
            model.sample(n)
    loss = model.training_step(torch.zeros(4, 1, dtype=torch.float64))  # float64 data
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_eps_model_and_q_sample_take_array_likes_and_never_truncate():
    model = Diffusion(2, hidden=(8,), T=10, schedule="cosine", time_features=3)
    x = torch.tensor([[1, -2], [0, 3], [2, 2]])
    t = torch.tensor([1.0, 4.5, 10.0])
    ref = model.eps_model(x.float(), t)
    # an int x used to turn the time features into ints (t.to(x.dtype) truncated 4.5 and the sines)
    for alt in (x, x.numpy(), x.tolist(), x.double()):
        got = model.eps_model(alt, t)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref)
    torch.testing.assert_close(model.eps_model(x.float(), t.tolist()), ref)
    torch.testing.assert_close(model.eps_model(x != 0, t), model.eps_model((x != 0).float(), t))
    steps, noise = torch.tensor([1, 5, 10]), torch.tensor([[0.5, -1.0], [2.0, 0.0], [1.0, 1.0]])
    ref = model.q_sample(x.float(), steps, noise)
    ab = model.alpha_bars[steps - 1].unsqueeze(1)  # the closed form, by hand
    torch.testing.assert_close(ref, ab.sqrt() * x.float() + (1 - ab).sqrt() * noise)
    torch.testing.assert_close(model.q_sample(x, steps, noise.numpy()), ref)
    torch.testing.assert_close(model.q_sample(x.tolist(), steps.tolist(), noise.tolist()), ref)


def test_eps_model_and_q_sample_shape_errors_name_the_argument():
    model = Diffusion(2, hidden=(8,), T=10, schedule="cosine", time_features=3)
    x, t = torch.zeros(3, 2), torch.tensor([1, 2, 3])
    for call, name in (
        (lambda: model.eps_model(torch.zeros(3, 3), t), "x"),
        (lambda: model.eps_model(torch.zeros(3), t), "x"),
        (lambda: model.eps_model(x, torch.ones(2)), "t"),
        (lambda: model.q_sample(torch.zeros(3, 2, 1), t, x), "x0"),
        (lambda: model.q_sample(torch.zeros(3, 1), t, x), "x0"),
        (lambda: model.q_sample(x, t, torch.zeros(3, 3)), "noise"),
        (lambda: model.q_sample(x, t, torch.zeros(2, 2)), "noise"),
        (lambda: model.q_sample(x, torch.tensor([1.0, 2.0, 3.0]), x), "t"),
        (lambda: model.q_sample(x, [0, 1, 2], x), "t"),  # step 0 used to read ᾱ_T
        (lambda: model.q_sample(x, [1, 2, 11], x), "t"),
    ):
        with pytest.raises(ValueError, match=rf"^{name} must"):
            call()
    # a tensor step outside [1, T] is not read on the host: its row is NaN, not another step's
    out = model.q_sample(torch.ones(3, 2), torch.tensor([0, 3, 11]), torch.ones(3, 2))
    assert out[[0, 2]].isnan().all() and out[1].isfinite().all()


@pytest.mark.parametrize("method", ["ancestral", "ode"])
def test_samplers_shared_step_network_path_equals_the_per_row_network(method):
    # the default network takes the step's time features as a bias (issue 18); a hook on the
    # network sends the samplers through eps_model's per-row concatenation: the same samples
    torch.manual_seed(0)  # the network's initial weights
    model = Diffusion(2, hidden=(16, 16), T=40, schedule="cosine").double()
    fast = model.sample(64, method=method, generator=torch.Generator().manual_seed(1))
    model.net.register_forward_hook(lambda *args: None)
    slow = model.sample(64, method=method, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)


# ---- DDIM (method="ddim") -------------------------------------------------------------------


def _consistent_float64(model: Diffusion) -> Diffusion:
    """The model in float64 with ᾱ recomputed from its β in float64: the float32 buffers are
    rounded separately (ᾱ_t/ᾱ_{t−1} ≠ 1 − β_t in the last bits), which would make two samplers
    that read β and ᾱ differently disagree by more than float64 rounding."""
    model = model.double()
    model.alpha_bars.copy_(torch.cumprod(1 - model.betas, 0))
    return model


def test_ddim_with_eta_one_on_every_step_is_the_ancestral_chain_draw_for_draw():
    # DDIM's σ_t² = η²(1−ᾱ_{t−1})/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_{t−1}) is, at η = 1 on the full grid, the
    # posterior variance β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t), which is what the ancestral chain uses
    # (σ_1 = 0 on both), and its mean √ᾱ_{t−1}x̂_0 + √(1−ᾱ_{t−1}−β̃_t)ε is the posterior mean
    # μ̃(x_t, x̂_0): the two samplers are one chain, and both draw x_T then a (T, n, dim) noise.
    model = _ExactGaussianDiffusion(2, hidden=(4,), T=60, schedule="cosine")
    model = _consistent_float64(model)
    ancestral = model.sample(200, generator=torch.Generator().manual_seed(7))
    ddim = model.sample(
        200, method="ddim", n_steps=60, eta=1.0, generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(ddim, ancestral, rtol=1e-10, atol=1e-10)
    # an untrained network (samples far from the data's scale), float32 buffers as stored
    with torch.random.fork_rng():  # the network's initial weights, global RNG left as it was
        torch.manual_seed(0)
        net = Diffusion(2, hidden=(16, 16), T=40, schedule="cosine")
    ancestral = net.sample(64, generator=torch.Generator().manual_seed(1))
    ddim = net.sample(
        64, method="ddim", n_steps=40, eta=1, generator=torch.Generator().manual_seed(1)
    )
    scale = ancestral.abs().max()
    assert (ddim - ancestral).abs().max() / scale < 1e-4
    # eta = 0 is another sampler: the same x_T, a different x_0
    det = net.sample(64, method="ddim", n_steps=40, generator=torch.Generator().manual_seed(1))
    assert (det - ancestral).abs().max() / scale > 1e-2


class _ExactGaussianDDIM(Diffusion):
    """ε* of data N(m, s² I) at the integer steps DDIM visits: √(1−ᾱ)(x − √ᾱ m)/(ᾱ s² + 1 − ᾱ)."""

    m, s = 1.5, 0.3

    def eps_model(self, x, t):
        ab = self.alpha_bars[t.round().long() - 1].unsqueeze(1).to(x.dtype)
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.m) / (ab * self.s**2 + 1 - ab)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_deterministic_ddim_is_euler_on_the_probability_flow_and_converges_to_its_map(schedule):
    # In y = x/√ᾱ, σ = √((1−ᾱ)/ᾱ) the flow is dy/dσ = ε* = σ(y − m)/(s² + σ²), so the exact map
    # is y_0 − m = (y_T − m)·s/√(s² + σ_T²), i.e. x_0 = m + s(x_T − √ᾱ_T m)/√(ᾱ_T s² + 1 − ᾱ_T);
    # DDIM (η = 0) is Euler in σ: y_prev − m = (y_t − m)(1 + (σ_prev − σ_t)σ_t/(s² + σ_t²)).
    model = _consistent_float64(_ExactGaussianDDIM(2, hidden=(4,), T=1000, schedule=schedule))
    m, s = model.m, model.s
    ab = torch.cat([torch.ones(1, dtype=torch.float64), model.alpha_bars])
    sigma = ((1 - ab) / ab).sqrt()  # σ_0 = 0
    errors = []
    for n_steps in (10, 20, 40, 80, 160, 1000, 7, 300):  # 7, 300: T/S not an integer
        x, path = model.sample(
            300,
            method="ddim",
            n_steps=n_steps,
            return_trajectory=True,
            generator=torch.Generator().manual_seed(0),
        )
        assert path.shape == (n_steps + 1, 300, 2) and torch.equal(path[-1], x)
        x_T = path[0]
        torch.testing.assert_close(
            x_T,
            torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        )
        # the documented grid τ_i = ⌊i·T/S⌋, written out here as Euler's product
        steps = [0] + [i * 1000 // n_steps for i in range(1, n_steps + 1)]
        gain = 1.0
        for prev, t in zip(steps[:-1], steps[1:]):
            gain *= 1 + (sigma[prev] - sigma[t]) * sigma[t] / (s**2 + sigma[t] ** 2)
        euler = m + (x_T / ab[-1].sqrt() - m) * gain
        torch.testing.assert_close(x, euler, rtol=1e-9, atol=1e-9)
        exact = m + s * (x_T - ab[-1].sqrt() * m) / (ab[-1] * s**2 + 1 - ab[-1]).sqrt()
        errors.append(float((x - exact).abs().max()))
    # first order: each doubling of the steps halves the error
    for coarse, fine in zip(errors[:4], errors[1:5]):
        assert 0.4 < fine / coarse < 0.6, errors
    # every step of the grid (S = T): within 2 % of the data's standard deviation
    assert errors[5] < 0.02 * s, errors


def test_ddim_matches_diffusers_ddim_scheduler():
    """Against diffusers' DDIMScheduler with timestep_spacing="trailing" (its steps are ours − 1:
    round(T − j·T/S) − 1), set_alpha_to_one=True (the last update goes to ᾱ_0 = 1, like ours), no
    clipping, ε-prediction, our ᾱ table (diffusers would recompute it in float32) and our noise
    slices passed as ``variance_noise``. S divides T here: for other S diffusers' "trailing" list
    and its step (prev = t − ⌊T/S⌋, not the next entry of its own list) disagree, so no single
    grid matches both; its default "leading" spacing never visits step T at all."""
    diffusers = pytest.importorskip("diffusers")
    with torch.random.fork_rng():  # the network's initial weights, global RNG left as it was
        torch.manual_seed(0)
        model = _consistent_float64(Diffusion(2, hidden=(16, 16), T=100, schedule="cosine"))
    n = 64
    for n_steps, eta in ((10, 0.0), (25, 0.5), (100, 1.0), (20, 1.0)):
        sched = diffusers.DDIMScheduler(
            num_train_timesteps=100,
            trained_betas=model.betas.float().numpy(),
            clip_sample=False,
            set_alpha_to_one=True,
            timestep_spacing="trailing",
            prediction_type="epsilon",
        )
        sched.alphas_cumprod = model.alpha_bars.clone()
        sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
        sched.set_timesteps(n_steps)
        ours = model.sample(
            n, method="ddim", n_steps=n_steps, eta=eta, generator=torch.Generator().manual_seed(3)
        )
        g = torch.Generator().manual_seed(3)
        x = torch.randn(n, 2, generator=g, dtype=torch.float64)
        noise = torch.randn(n_steps, n, 2, generator=g, dtype=torch.float64) if eta else None
        with torch.no_grad():
            for j, t in enumerate(sched.timesteps):
                eps = model.eps_model(x, torch.full((n,), float(t) + 1, dtype=torch.float64))
                extra = {"variance_noise": noise[n_steps - 1 - j]} if eta else {}
                x = sched.step(eps, int(t), x, eta=eta, **extra).prev_sample
        assert x.dtype == torch.float64
        torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9 * float(x.abs().max()))


def test_ddim_arguments_are_validated_by_name():
    model = Diffusion(1, hidden=(4,), T=20, schedule="cosine")
    for kwargs, name in (
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=21), "n_steps"),
        (dict(n_steps=2.0), "n_steps"),
        (dict(n_steps=True), "n_steps"),
        (dict(eta=-0.1), "eta"),
        (dict(eta=float("nan")), "eta"),
        (dict(eta=float("inf")), "eta"),
        (dict(eta="0"), "eta"),
        (dict(eta=50.0), "eta"),  # makes σ² exceed 1 − ᾱ_prev: the bound is given
    ):
        with pytest.raises(ValueError, match=rf"^{name} must"):
            model.sample(3, method="ddim", **kwargs)
    # a huge eta (eta² overflows a float: it was an OverflowError) gets the same bound as 50
    with pytest.raises(ValueError, match=r"^eta must be <= (\S+) with") as small:
        model.sample(3, method="ddim", eta=50.0)
    for eta in (1e155, 1e300, sys.float_info.max):
        with pytest.raises(ValueError, match=r"^eta must be <= (\S+) with") as huge:
            model.sample(3, method="ddim", eta=eta)
        assert str(huge.value).split(" with")[0] == str(small.value).split(" with")[0]
        assert f"got {eta!r}" in str(huge.value)
    # one step, to ᾱ_0 = 1: σ = 0 for every eta, so any finite eta is eta = 0
    for eta in (1e300, 5.0):
        got = model.sample(
            3, "ddim", n_steps=1, eta=eta, generator=torch.Generator().manual_seed(4)
        )
        ref = model.sample(
            3, "ddim", n_steps=1, eta=0.0, generator=torch.Generator().manual_seed(4)
        )
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    for method in ("ancestral", "ode"):
        for kwargs, name in ((dict(n_steps=5), "n_steps"), (dict(eta=0.0), "eta")):
            with pytest.raises(ValueError, match=rf"^{name} is only available with method='ddim'"):
                model.sample(3, method=method, **kwargs)
    with pytest.raises(ValueError, match="return_trajectory"):
        model.sample(3, method="ode", return_trajectory=True)
    # the default grid: min(T, 50) steps, deterministic
    x, path = model.sample(3, method="ddim", return_trajectory=True)
    assert path.shape == (21, 3, 1)
    y = model.sample(3, method="ddim", n_steps=20, generator=torch.Generator().manual_seed(0))
    # numpy integers are ints
    import numpy as np

    w = model.sample(
        3, method="ddim", n_steps=np.int64(20), generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(w, y)
    z = model.sample(3, method="ddim", n_steps=20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, z)


# ---- the probability-flow likelihood (log_prob) ----------------------------------------------


def _gaussian_log_prob_pieces(model, x, m, s):
    """For data N(m, s²I) and the exact ε: the exact log N(x; m, s²I) (n,), the prior's residual
    log N(x_T; 0, I) − log q_T(x_T) (n,) that log_prob keeps (x_T = √ᾱ_T m + √v (x − m)/s with
    v = ᾱ_T s² + 1 − ᾱ_T, the exact flow's image), and u = (x − m)/s."""
    D = x.shape[1]
    sigma_T = float(model.log_sigmas[-1].double().exp())
    ab = 1 / (1 + sigma_T**2)
    v = ab * s**2 + 1 - ab
    u = (x - m) / s
    z = ab**0.5 * m + v**0.5 * u
    exact = (-0.5 * u**2).sum(1) - D * math.log(s) - 0.5 * D * math.log(2 * math.pi)
    residual = (
        (-0.5 * z**2).sum(1) + (0.5 * (z - ab**0.5 * m) ** 2 / v).sum(1) + 0.5 * D * math.log(v)
    )
    return exact, residual, u, ab


@pytest.mark.parametrize(
    ("T", "schedule", "m"), [(1000, "linear", 1.5), (1000, "linear", 0.0), (100, "cosine", 1.5)]
)
def test_log_prob_with_the_exact_noise_predictor_is_the_gaussian_log_density(T, schedule, m):
    # In y = x/√ᾱ the exact flow is dy/dσ = σ(y − m)/(s² + σ²): log_prob must be
    # log N(x; m, s²I) plus the prior's residual (the model starts from N(0, I), not q_T). Below
    # step 1 the score is held at σ_1, an error of at most σ_1⁴/(4s⁴)(D + ‖u‖²) (module comment).
    model = _ExactGaussianDiffusion(2, hidden=(4,), T=T, schedule=schedule).double()
    model.m, model.s = m, 0.7
    x = m + 0.7 * torch.randn(
        40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    lp = model.log_prob(x, rtol=1e-9, atol=1e-9)
    exact, residual, u, ab = _gaussian_log_prob_pieces(model, x, m, 0.7)
    sigma_1 = float(model.log_sigmas[0].double().exp())
    below_step_1 = sigma_1**4 / (4 * 0.7**4) * (2 + (u**2).sum(1))
    assert ((lp - exact - residual).abs() <= 2 * below_step_1 + 1e-6).all()
    # the residual itself: ≈ −√ᾱ_T m·x_T per point (6e−3 nats here for m = 1.5), O(ᾱ_T) at m = 0
    bound = ab**0.5 * abs(m) * x.shape[1] ** 0.5 * (u**2).sum(1).sqrt() + ab * (2 + (u**2).sum(1))
    assert ((lp - exact).abs() <= 2 * bound + 2 * below_step_1 + 1e-6).all()
    if m == 0.0:
        assert float((lp - exact).abs().max()) < 5e-4  # ᾱ_T ≈ 4e−5 with the default schedule


def test_ode_sampler_with_the_exact_noise_predictor_is_the_exact_gaussian_map():
    # the exact flow carries x_T to x_0 = m + s(x_T − √ᾱ_T m)/√(ᾱ_T s² + 1 − ᾱ_T); DDIM's last
    # Euler step (the sampler's former end) moved y twice as far as the flow below step 1
    model = _ExactGaussianDiffusion(2, hidden=(4,), T=100, schedule="cosine").double()
    m, s = model.m, model.s
    x = model.sample(
        200, method="ode", generator=torch.Generator().manual_seed(0), rtol=1e-9, atol=1e-9
    )
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ab = 1 / (1 + float(model.log_sigmas[-1].exp()) ** 2)
    exact = m + s * (x_T - ab**0.5 * m) / (ab * s**2 + 1 - ab) ** 0.5
    sigma_1 = float(model.log_sigmas[0].exp())
    # the score held at σ_1 below step 1: relative error σ_1⁴/(2s⁴) of y − m at most
    tol = sigma_1**4 / (2 * s**4) * float((exact - m).abs().max()) + 1e-7
    torch.testing.assert_close(x, exact, rtol=0, atol=tol)


def _trained_mixture_model() -> Diffusion:
    """A small model fitted for 300 steps to 0.5·N((−1, 0), 0.4²I) + 0.5·N((1, 0.5), 0.4²I),
    all draws from a fixed generator (no global RNG): not a good fit, a concentrated density."""
    g = torch.Generator().manual_seed(0)
    model = Diffusion(2, hidden=(32, 32), T=100, schedule="cosine", time_features=4)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.5]])
    for _ in range(300):
        x0 = centres[torch.randint(0, 2, (256,), generator=g)] + 0.4 * torch.randn(
            256, 2, generator=g
        )
        t = torch.randint(1, model.T + 1, (256,), generator=g)
        noise = torch.randn(256, 2, generator=g)
        loss = (model.eps_model(model.q_sample(x0, t, noise), t) - noise).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def mixture_model() -> Diffusion:
    return _trained_mixture_model()


def test_log_prob_integrates_to_one_on_a_grid(mixture_model):
    # midpoint rule, h = 0.1 on [−4, 4]²: the ODE samples all lie inside (|x| < 3), and halving
    # h moved the sum by 1e−3 (error ∝ h²): 5e−3 covers quadrature and solver (rtol 1e−4) error,
    # while a wrong Jacobian term (a factor ᾱ_T^{±1/2} per dimension, ᾱ_T ≈ 2e−7) is far off
    h = 0.1
    axis = torch.arange(-4 + h / 2, 4, h)
    grid = torch.cartesian_prod(axis, axis)
    lp = mixture_model.log_prob(grid, rtol=1e-4, atol=1e-4)
    assert abs(float(lp.exp().sum()) * h * h - 1) < 5e-3
    x = mixture_model.sample(
        500, method="ode", generator=torch.Generator().manual_seed(1), rtol=1e-4, atol=1e-4
    )
    assert float(x.abs().max()) < 3.5


def test_log_prob_inverts_the_ode_sampler_and_is_finite_on_its_samples(mixture_model):
    # x_T -> sample(method="ode") -> x_0 -> log_prob's flow -> x_T. Measured: 1.6e−4 at
    # rtol = atol = 1e−7 (the time embedding makes the field oscillate in t, so the error is
    # not ∝ rtol); DDIM's Euler step below step 1, the sampler's former end, gave 7.6e−2
    model = _trained_mixture_model().double()
    model.load_state_dict(mixture_model.state_dict())
    x = model.sample(
        64, method="ode", generator=torch.Generator().manual_seed(2), rtol=1e-7, atol=1e-7
    )
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    back, _ = model._flow_to_noise(x, None, 1e-7, 1e-7, 4096)
    torch.testing.assert_close(back, x_T, rtol=0, atol=1e-3)
    lp = model.log_prob(x, rtol=1e-6, atol=1e-6)
    assert lp.isfinite().all() and lp.dtype == torch.float64
    # the densest samples are likelier than points far from both modes
    far = model.log_prob(torch.tensor([[0.0, 3.0], [-3.0, -3.0]]), rtol=1e-6, atol=1e-6)
    assert float(far.max()) < float(lp.median())


def test_log_prob_forward_mode_divergence_equals_autograd():
    # the default network goes through _chain_divergence; a hook on it sends log_prob through
    # autograd (autograd_divergence): the same exact divergence, the same log-density
    g = torch.Generator().manual_seed(3)
    model = Diffusion(3, hidden=(16, 16), T=30, schedule="cosine", time_features=3).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    fast = model.log_prob(x, divergence="exact", rtol=1e-9, atol=1e-9)
    model.net.register_forward_hook(lambda *args: None)
    slow = model.log_prob(x, divergence="exact", rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fast, slow, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("hooked", [False, True])
def test_hutchinson_log_prob_is_unbiased(mixture_model, hooked):
    # each row gets its own probe for the whole solve: over K copies of a point the mean
    # estimate matches the exact divergence within 4 standard errors (both paths)
    model = _trained_mixture_model()
    model.load_state_dict(mixture_model.state_dict())
    if hooked:
        model.net.register_forward_hook(lambda *args: None)
    points = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.3, -0.8]])
    exact = model.log_prob(points, divergence="exact", rtol=1e-5, atol=1e-5)
    K = 300
    est = model.log_prob(
        points.repeat_interleave(K, 0),
        divergence="hutchinson",
        rtol=1e-5,
        atol=1e-5,
        generator=torch.Generator().manual_seed(4),
    ).reshape(3, K)
    se = est.std(1) / K**0.5
    assert (est.std(1) > 1e-3).all()  # the probes do vary
    assert ((est.mean(1) - exact).abs() < 4 * se).all(), (est.mean(1), exact, se)
    # "auto" is exact in two dimensions: no probe, no draw
    torch.testing.assert_close(model.log_prob(points, rtol=1e-5, atol=1e-5), exact)


def test_log_prob_validates_its_inputs_by_name():
    import numpy as np

    model = Diffusion(2, hidden=(4,), T=10, schedule="cosine")
    x = torch.zeros(3, 2)
    for kwargs, name in (
        (dict(x=torch.tensor([[0.0, float("nan")]])), "x"),
        (dict(x=torch.tensor([[0.0, float("inf")]])), "x"),
        (dict(x=torch.zeros(3, 3)), "x"),
        (dict(x=torch.zeros(0, 2)), "x"),
        (dict(x=torch.zeros(2)), "x"),
        (dict(x="a"), "x"),
        (dict(x=x, divergence="trace"), "divergence"),
        (dict(x=x, rtol=-1.0), "rtol"),
        (dict(x=x, atol=float("nan")), "atol"),
        (dict(x=x, max_num_steps=0), "max_num_steps"),
        (dict(x=x, generator=3), "generator"),
    ):
        with pytest.raises(ValueError, match=rf"^{name} "):
            model.log_prob(**kwargs)
    # array-likes and integers are accepted, cast to the parameters' dtype
    a = model.log_prob(np.zeros((3, 2), dtype=np.int64), rtol=1e-4, atol=1e-4)
    b = model.log_prob([[0, 0], [0, 0], [0, 0]], rtol=1e-4, atol=1e-4)
    c = model.log_prob(torch.zeros(3, 2, dtype=torch.float64), rtol=1e-4, atol=1e-4)
    assert a.dtype == b.dtype == c.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(a, c)


class _ZeroEps(Diffusion):
    """ε_θ ≡ 0 with no autograd path to x (torch.zeros_like)."""

    def eps_model(self, x, t):
        return torch.zeros_like(x)


class _ZeroEpsFromParameters(Diffusion):
    """ε_θ ≡ 0 computed from the parameters alone: requires grad, no path to x."""

    def eps_model(self, x, t):
        return torch.zeros_like(x) + 0 * self.net[0].bias.sum()


class _NumpyEps(Diffusion):
    """ε_θ computed in numpy: varies with x, invisible to autograd."""

    def eps_model(self, x, t):
        import numpy as np

        return torch.from_numpy(np.sin(x.detach().numpy()))


class _DetachedEps(Diffusion):
    """The default network on a detached x: requires grad (parameters), no path to x."""

    def eps_model(self, x, t):
        return self._eps(x.detach(), t)


@pytest.mark.parametrize("cls", [_ZeroEps, _ZeroEpsFromParameters])
@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_log_prob_of_an_eps_model_constant_in_x_is_the_closed_form(cls, divergence):
    """ε_θ ≡ 0: the ODE leaves y = x/√ᾱ fixed, the divergence is 0, so x_T = √ᾱ_T x and
    log p(x) = log N(√ᾱ_T x; 0, I) + (D/2) log ᾱ_T (was autograd's "element 0 of tensors does
    not require grad")."""
    model = cls(2, hidden=(4,), T=10, schedule="cosine")
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5], [0.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    got = model.log_prob(x, divergence=divergence, generator=g)
    ab_T = model.alpha_bars[-1].double()
    x_T = ab_T.sqrt() * x.double()
    expected = -0.5 * x_T.square().sum(1) - math.log(2 * math.pi) + math.log(ab_T)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [_NumpyEps, _DetachedEps])
def test_log_prob_refuses_an_eps_model_autograd_cannot_differentiate(cls):
    model = cls(2, hidden=(4,), T=10, schedule="cosine")
    with pytest.raises(ValueError, match=r"^eps_model must be differentiable in its input x"):
        model.log_prob(torch.tensor([[0.3, -1.2]]))


def test_log_prob_far_out_is_float64s_value_then_minus_inf_then_an_error_naming_x():
    """A point far out: float32 agrees with float64 while the value fits (2**62 raised the
    solver's NonFiniteODEError before: its error norm squared a finite 1e22 ratio past float32's
    range); beyond float32's range the density is −inf (float64 still finite); where ε_θ itself
    overflows, a ValueError naming x."""
    model = Diffusion(2, hidden=(8,), T=10, schedule="cosine")
    model64 = copy.deepcopy(model).double()
    for far in (2.0**62, 1e20):
        x = [[far, 0.0], [0.0, -far]]
        lp, lp64 = model.log_prob(x), model64.log_prob(x)
        assert torch.isfinite(lp64).all() and (lp64 < -1e30).all()
        torch.testing.assert_close(lp.double(), lp64, rtol=1e-4, atol=0)
    x = [[1e30, 0.0], [0.5, 0.5]]
    lp, lp64 = model.log_prob(x), model64.log_prob(x)
    assert lp[0] == -math.inf and torch.isfinite(lp64).all() and lp64[0] < -1e50
    torch.testing.assert_close(lp[1].double(), lp64[1], rtol=1e-4, atol=1e-4)  # the other row
    with pytest.raises(ValueError, match=r"^x is too far out for log_prob in torch.float32 "):
        model.log_prob([[3e38, 0.0]])


def test_overflow_safe_norm_is_the_default_norm_without_its_overflow():
    from torchdiffeq._impl.misc import _mixed_norm, _rms_norm

    from ebm.inference.ode import overflow_safe_norm

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g), 1e-3 * torch.randn(7, generator=g)
    torch.testing.assert_close(overflow_safe_norm(a), _rms_norm(a), rtol=1e-6, atol=0)
    torch.testing.assert_close(overflow_safe_norm((a, b)), _mixed_norm((a, b)), rtol=1e-6, atol=0)
    assert overflow_safe_norm(torch.zeros(4)) == 0
    big = torch.tensor([1e22, -3e22, 0.0])
    assert _rms_norm(big) == math.inf  # the squares overflow float32
    expected = math.sqrt((1 + 9) / 3) * 1e22
    torch.testing.assert_close(overflow_safe_norm(big), torch.tensor(expected), rtol=1e-6, atol=0)
