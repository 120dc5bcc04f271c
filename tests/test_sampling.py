"""Samplers against closed forms: Gaussian moments, the banana's exact sampler, Pyro NUTS."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import BananaEnergy, GaussianEnergy
from ebm.metrics import mmd
from ebm.sampling import hmc, langevin, mala

MEAN = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]])


def _gaussian():
    return GaussianEnergy(MEAN, COV)


def _start(n, seed=0, d=2):
    return 3.0 * torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _moments(x):
    return x.mean(0), torch.cov(x.T)


def _ula_stationary_cov(step):
    """Unadjusted Langevin on a Gaussian is a linear AR(1) map x' = (I − hP)x + √(2h)ε whose
    stationary covariance solves Σ = AΣAᵀ + 2hI; in P's eigenbasis σᵢ² = 2 / (λᵢ(2 − hλᵢ))."""
    lam, vec = torch.linalg.eigh(torch.linalg.inv(COV))
    return vec @ torch.diag(2.0 / (lam * (2.0 - step * lam))) @ vec.T


def test_langevin_matches_gaussian_moments():
    g = torch.Generator().manual_seed(1)
    x = langevin(_gaussian(), _start(4000), n_steps=400, step_size=0.05, generator=g)
    mean, cov = _moments(x)
    torch.testing.assert_close(mean, MEAN, atol=0.06, rtol=0)
    # the ULA bias at this step is known exactly: compare with it, and it is close to COV
    torch.testing.assert_close(cov, _ula_stationary_cov(0.05), atol=0.06, rtol=0)
    torch.testing.assert_close(cov, COV, atol=0.1, rtol=0)


def test_langevin_noise_scale_zero_is_gradient_descent_to_the_mode():
    x = langevin(_gaussian(), _start(64), n_steps=500, step_size=0.1, noise_scale=0.0)
    torch.testing.assert_close(x, MEAN.expand(64, 2), atol=1e-4, rtol=0)


def test_langevin_clamp_keeps_states_in_the_box():
    x = langevin(_gaussian(), _start(256), n_steps=20, step_size=0.1, clamp=(-0.2, 0.3))
    assert x.min() >= -0.2 and x.max() <= 0.3


def test_langevin_leaves_x0_untouched_and_follows_the_generator():
    x0 = _start(32)
    before = x0.clone()
    a = langevin(_gaussian(), x0, 10, 0.1, generator=torch.Generator().manual_seed(3))
    b = langevin(_gaussian(), x0, 10, 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x0, before) and torch.equal(a, b)


def test_mala_matches_gaussian_moments_without_step_bias():
    g = torch.Generator().manual_seed(2)
    # a large step: ULA would be visibly biased here, MALA's correction removes it
    x, rate = mala(_gaussian(), _start(4000), n_steps=300, step_size=0.4, generator=g)
    mean, cov = _moments(x)
    torch.testing.assert_close(mean, MEAN, atol=0.06, rtol=0)
    torch.testing.assert_close(cov, COV, atol=0.07, rtol=0)
    assert (_ula_stationary_cov(0.4) - COV).abs().max() > 0.2  # the bias MALA avoided
    assert rate.ndim == 0 and 0.3 < float(rate) < 0.95


def test_hmc_matches_gaussian_moments_with_a_diagonal_mass():
    g = torch.Generator().manual_seed(4)
    x, rate = hmc(
        _gaussian(),
        _start(3000),
        n_steps=60,
        step_size=0.2,
        n_leapfrog=8,
        mass=1.0 / COV.diagonal(),
        generator=g,
    )
    mean, cov = _moments(x)
    torch.testing.assert_close(mean, MEAN, atol=0.06, rtol=0)
    torch.testing.assert_close(cov, COV, atol=0.07, rtol=0)
    assert 0.6 < float(rate) <= 1.0


def test_hmc_tiny_step_accepts_almost_everything():
    _, rate = hmc(_gaussian(), _start(500), n_steps=10, step_size=0.01, n_leapfrog=5)
    assert float(rate) > 0.99


def _banana_exact(n, a=1.0, b=1.0, seed=0):
    """y1 ~ N(0, a²), y2 | y1 ~ N(b(y1² − a²), 1): the banana's density, drawn exactly."""
    g = torch.Generator().manual_seed(seed)
    y1 = a * torch.randn(n, generator=g)
    y2 = b * (y1**2 - a**2) + torch.randn(n, generator=g)
    return torch.stack([y1, y2], 1)


def test_mala_and_hmc_match_the_banana_exact_sampler():
    energy = BananaEnergy(a=1.0, b=1.0)
    exact = _banana_exact(1500, seed=10)
    # start near the bulk: from far out the banana's steep walls make every proposal fail
    x0 = _start(1500) / 3.0
    x_mala, _ = mala(energy, x0, 500, 0.2, generator=torch.Generator().manual_seed(5))
    x_hmc, _ = hmc(energy, x0, 60, 0.15, 10, generator=torch.Generator().manual_seed(6))
    # negative control: a Gaussian with the banana's mean and covariance is clearly rejected
    moment_matched = torch.randn(1500, 2, generator=torch.Generator().manual_seed(7))
    moment_matched = moment_matched @ torch.linalg.cholesky(torch.cov(exact.T)).T + exact.mean(0)
    threshold = 2e-3  # two independent exact sets of this size differ by ~2e-4
    assert float(mmd(x_mala, exact)) < threshold
    assert float(mmd(x_hmc, exact)) < threshold
    assert float(mmd(moment_matched, exact)) > 2 * threshold


@pytest.mark.slow
def test_samples_match_pyro_nuts_on_the_banana():
    from pyro.infer import MCMC, NUTS

    energy = BananaEnergy(a=1.0, b=1.0)

    def potential_fn(params):
        return energy(params["y"].unsqueeze(0)).squeeze(0)

    torch.manual_seed(0)  # pyro's MCMC draws from the global RNG; tests own it here
    kernel = NUTS(potential_fn=potential_fn)
    mcmc = MCMC(kernel, num_samples=600, warmup_steps=300, initial_params={"y": torch.zeros(2)})
    mcmc.run()
    nuts = mcmc.get_samples()["y"]
    x, _ = mala(energy, _start(600) / 3.0, 500, 0.2, generator=torch.Generator().manual_seed(5))
    assert float(mmd(x, nuts)) < 1e-2


def test_samplers_accept_plain_callables_and_keep_dtype():
    def energy(x):
        return 0.5 * x.pow(2).sum(1)

    x0 = _start(8).double()
    assert langevin(energy, x0, 3, 0.1).dtype == torch.float64
    x, rate = mala(energy, x0, 3, 0.1)
    assert x.dtype == torch.float64 and rate.dtype == torch.float64
    assert hmc(energy, x0, 2, 0.1, 3)[0].shape == (8, 2)


def test_samplers_restore_requires_grad_of_the_energy_parameters():
    energy = _gaussian()
    energy.weight = torch.nn.Parameter(torch.ones(1))
    langevin(energy, _start(4), 2, 0.1)
    assert energy.weight.requires_grad


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_steps": -1}, "n_steps"),
        ({"step_size": 0.0}, "step_size"),
        ({"noise_scale": -1.0}, "noise_scale"),
        ({"clamp": (1.0, 0.0)}, "clamp"),
    ],
)
def test_langevin_rejects_bad_arguments(kwargs, match):
    args = {"n_steps": 2, "step_size": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        langevin(_gaussian(), _start(4), **args)


def test_bad_energy_shape_and_mass_are_rejected():
    with pytest.raises(ValueError, match="energy must return"):
        langevin(lambda x: x.sum(), _start(4), 2, 0.1)
    with pytest.raises(ValueError, match="mass"):
        hmc(_gaussian(), _start(4), 2, 0.1, mass=torch.ones(3))
    with pytest.raises(ValueError, match="x0"):
        mala(_gaussian(), torch.zeros(0, 2), 2, 0.1)


def test_fused_mlp_gradient_matches_autograd():
    from ebm.energies import MLPEnergy
    from ebm.sampling._common import energy_and_grad
    from ebm.sampling._fused_grad import fused_input_gradient as mlp_input_gradient

    nets = [
        MLPEnergy(3).double(),
        MLPEnergy(3, hidden=(5, 4, 6), activation=torch.nn.Tanh).double(),
        torch.nn.Sequential(
            torch.nn.Linear(3, 7),
            torch.nn.Softplus(),
            torch.nn.Linear(7, 6),
            torch.nn.ReLU(),
            torch.nn.Linear(6, 5),
            torch.nn.Sigmoid(),
            torch.nn.Linear(5, 1),
        ).double(),
        torch.nn.Sequential(torch.nn.Linear(3, 1)).double(),
    ]
    x = torch.randn(9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for net in nets:
        fused = mlp_input_gradient(net)
        assert fused is not None
        _, reference = energy_and_grad(lambda y, net=net: net(y).reshape(-1), x)
        torch.testing.assert_close(fused(x), reference, atol=1e-12, rtol=1e-10)
    # anything else (conditional MLP, other activations) is left to autograd
    assert mlp_input_gradient(MLPEnergy(2, cond_dim=1)) is None
    assert mlp_input_gradient(MLPEnergy(2, activation=torch.nn.Hardswish)) is None
    assert mlp_input_gradient(_gaussian()) is None


@pytest.mark.slow
@pytest.mark.parametrize("fused", [True, False])
def test_langevin_compiled_step_matches_eager(fused):
    from ebm.energies import MLPEnergy

    energy = MLPEnergy(2, hidden=(16,)) if fused else _gaussian()
    x0 = _start(16)
    eager = langevin(energy, x0, 5, 0.05, generator=torch.Generator().manual_seed(0))
    compiled = langevin(
        energy, x0, 5, 0.05, generator=torch.Generator().manual_seed(0), compile=True
    )
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert math.isfinite(float(compiled.sum()))


@pytest.mark.slow
def test_mala_and_hmc_compiled_steps_match_eager():
    x0 = _start(16)
    for sampler, args in ((mala, (5, 0.1)), (hmc, (3, 0.1, 4))):
        eager = sampler(_gaussian(), x0, *args, generator=torch.Generator().manual_seed(0))
        compiled = sampler(
            _gaussian(), x0, *args, generator=torch.Generator().manual_seed(0), compile=True
        )
        torch.testing.assert_close(compiled[0], eager[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(compiled[1], eager[1])


# ---- the input convention (issue 12) ------------------------------------------------------------

_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"noise_scale": _NAN}, "noise_scale"),
        ({"noise_scale": _INF}, "noise_scale"),
        ({"noise_scale": "0.1"}, "noise_scale"),
        ({"step_size": _INF}, "step_size"),
        ({"step_size": _NAN}, "step_size"),
        ({"step_size": "0.1"}, "step_size"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"n_steps": True}, "n_steps"),
        ({"clamp": ("a", "b")}, r"clamp\[0\]"),
        ({"clamp": (0.0, _NAN)}, r"clamp\[1\]"),
        ({"clamp": 1.0}, "clamp"),
        ({"clamp": (0.0, 1.0, 2.0)}, "clamp"),
        ({"compile": "yes"}, "compile"),
        ({"generator": 3}, "generator"),
    ],
)
def test_langevin_rejects_non_finite_and_mistyped_hyper_parameters(kwargs, name):
    args = {"n_steps": 2, "step_size": 0.1, **kwargs}
    with pytest.raises(ValueError, match=name):
        langevin(_gaussian(), _start(4), **args)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mass": _INF}, "mass"),
        ({"mass": _NAN}, "mass"),
        ({"mass": [1.0, _NAN]}, "mass"),
        ({"mass": "heavy"}, "mass"),
        ({"mass": -1.0}, "mass"),
        ({"mass": True}, "mass"),  # a bool is not a number
        ({"mass": torch.tensor([True, True])}, "mass"),
        ({"mass": [True, False]}, "mass"),
        ({"n_leapfrog": 2.0}, "n_leapfrog"),
        ({"step_size": _INF}, "step_size"),
    ],
)
def test_hmc_rejects_bad_mass_and_settings(kwargs, name):
    args = {"n_steps": 2, "step_size": 0.1, **kwargs}
    with pytest.raises(ValueError, match=name):
        hmc(_gaussian(), _start(4), **args)
    if "mass" not in kwargs and "n_leapfrog" not in kwargs:
        with pytest.raises(ValueError, match=name):
            mala(_gaussian(), _start(4), **args)


def test_samplers_cast_states_to_the_energy_dtype_and_accept_array_likes():
    from ebm.energies import MLPEnergy

    torch.manual_seed(0)  # the MLP's initial weights; tests own the global RNG
    energy = MLPEnergy(2, hidden=(8,))
    x0 = _start(6)
    for sampler in (langevin, mala, hmc):
        runs = [
            sampler(energy, x, 3, 0.1, generator=torch.Generator().manual_seed(4))
            for x in (x0, x0.double(), x0.tolist())
        ]
        runs = [r[0] if isinstance(r, tuple) else r for r in runs]
        assert all(r.dtype == torch.float32 for r in runs)  # float64 states ran in float32
        torch.testing.assert_close(runs[1], runs[0])
        torch.testing.assert_close(runs[2], runs[0])
    # integer states are promoted, not truncated: zero steps return them as floats
    out = langevin(_gaussian(), [[1, 2], [3, 4]], 0, 0.1)
    assert out.dtype == torch.get_default_dtype()
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


@pytest.mark.parametrize("sampler", [langevin, mala, hmc])
@pytest.mark.parametrize("bad", [_NAN, _INF])
def test_non_finite_x0_row_propagates_to_its_own_chain_only(sampler, bad):
    # samplers do not read x0's values (no host sync in EBM training's loop): a bad row stays
    # bad, and the other chains, being independent, are exactly the clean run's chains
    x0 = _start(5)
    dirty = x0.clone()
    dirty[2, 0] = bad
    runs = [
        sampler(_gaussian(), x, 4, 0.1, generator=torch.Generator().manual_seed(3))
        for x in (x0, dirty)
    ]
    clean, out = [r[0] if isinstance(r, tuple) else r for r in runs]
    assert not out[2].isfinite().all()
    others = [0, 1, 3, 4]
    assert out[others].isfinite().all()
    torch.testing.assert_close(out[others], clean[others], rtol=0, atol=0)
    if sampler is not langevin:  # the rate is a finite mean over the chains
        assert runs[1][1].isfinite()
