"""Diffusion: the schedule check, closed-form forward marginals, both samplers driven by the exact
ε of Gaussian data, and a small trained model's mode fractions."""

from __future__ import annotations

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
