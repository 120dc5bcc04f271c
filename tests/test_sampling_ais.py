"""AIS, reverse AIS and log-likelihoods against closed-form partition functions."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import GaussianEnergy
from ebm.sampling import AISResult, ais, log_likelihood, reverse_ais


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian(d: int, seed: int = 0) -> tuple[GaussianEnergy, float]:
    """N(μ, Σ) with a random full covariance (eigenvalues about 0.5–2.5), float64; log Z."""
    g = _gen(seed)
    mean = 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    cov = 0.5 * a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64)
    log_z = 0.5 * d * math.log(2 * math.pi) + 0.5 * float(torch.logdet(cov))
    return GaussianEnergy(mean, cov), log_z


class Mixture(torch.nn.Module):
    """E(x) = −log Σ_k π_k N(x; μ_k, s²I) + offset: log Z = −offset. Three modes at distance 3
    from the origin along random directions, s = 0.6, weights 0.5/0.3/0.2."""

    def __init__(self, d: int, offset: float = 3.0, seed: int = 0):
        super().__init__()
        dirs = torch.randn(3, d, generator=_gen(seed), dtype=torch.float64)
        self.register_buffer("means", 3.0 * dirs / dirs.norm(dim=1, keepdim=True))
        self.register_buffer("log_w", torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64).log())
        self.std, self.offset = 0.6, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[1]
        sq = (x[:, None, :] - self.means).pow(2).sum(-1) / self.std**2
        log_norm = d * math.log(self.std) + 0.5 * d * math.log(2 * math.pi)
        return -torch.logsumexp(self.log_w - 0.5 * sq - log_norm, 1) + self.offset

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k = torch.multinomial(self.log_w.exp(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + self.std * noise


# ---- accuracy against closed forms (the targets) --------------------------------------


@pytest.mark.parametrize("d", [2, 16])
def test_ais_gaussian_within_005_nats(d):
    # 256 chains x 1000 temperatures x 1 MALA step: about 2 s at d = 16 on a 2-core CPU
    energy, log_z = _gaussian(d)
    r = ais(energy, d, n_chains=256, n_temps=1000, generator=_gen(1))
    assert isinstance(r, AISResult) and r.log_z.dtype == torch.float64 and r.log_z.ndim == 0
    assert abs(float(r.log_z) - log_z) <= 0.05
    assert 0 < float(r.stderr) < 0.05  # the reported error bar is of the size of the error
    assert 1 <= float(r.ess) <= 256 and r.log_weights.shape == (256,)
    assert r.samples.shape == (256, d)
    # the final states follow exp(−E): mean within a few standard errors of μ
    assert torch.allclose(r.samples.mean(0), energy.mean, atol=0.35)


def test_ais_gaussian_d64_within_02_nats():
    # 256 chains x 1000 temperatures: about 3.5 s; measured errors of 0.005–0.04 nats
    energy, log_z = _gaussian(64, seed=3)
    r = ais(energy, 64, n_chains=256, n_temps=1000, generator=_gen(2))
    assert abs(float(r.log_z) - log_z) <= 0.2


def test_ais_mixture_d8_within_005_nats():
    energy = Mixture(8)
    r = ais(energy, 8, n_chains=256, n_temps=1000, base_std=2.0, generator=_gen(3))
    assert abs(float(r.log_z) - (-3.0)) <= 0.05


@pytest.mark.slow
def test_ais_mixture_d16_within_005_nats():
    # 512 chains x 2000 temperatures: about 5 s; measured errors of 0.005–0.006 over 3 seeds
    energy = Mixture(16)
    r = ais(energy, 16, n_chains=512, n_temps=2000, base_std=2.0, generator=_gen(4))
    assert abs(float(r.log_z) - (-3.0)) <= 0.05


@pytest.mark.slow
def test_ais_gaussian_d64_long_run_within_005_nats():
    energy, log_z = _gaussian(64, seed=3)
    r = ais(energy, 64, n_chains=256, n_temps=3000, generator=_gen(5))
    assert abs(float(r.log_z) - log_z) <= 0.05


def test_hmc_kernel_is_accurate_too():
    energy, log_z = _gaussian(4)
    r = ais(energy, 4, n_chains=128, n_temps=300, kernel="hmc", n_leapfrog=3, generator=_gen(6))
    assert abs(float(r.log_z) - log_z) <= 0.05
    assert 0.4 < float(r.acceptance) < 0.95


# ---- the BDMC sandwich ------------------------------------------------------------------------


def test_sandwich_brackets_the_true_log_z():
    energy, log_z = _gaussian(4, seed=1)
    exact = torch.distributions.MultivariateNormal(
        energy.mean, precision_matrix=energy.precision
    ).sample((256,))
    lower = ais(energy, 4, n_chains=256, n_temps=300, generator=_gen(7))
    upper = reverse_ais(energy, exact, n_temps=300, generator=_gen(8))
    assert float(lower.log_z) - 3 * float(lower.stderr) <= log_z
    assert log_z <= float(upper.log_z) + 3 * float(upper.stderr)
    assert float(upper.log_z - lower.log_z) < 0.1  # the sandwich is tight


def test_bounds_go_the_right_way_in_expectation():
    # two temperatures and a wide base: the Jensen gaps are large and must have the right signs,
    # E[forward] < log Z < E[reverse], each mean two standard errors away from log Z
    energy, log_z = _gaussian(4, seed=2)
    chol = torch.linalg.cholesky(torch.linalg.inv(energy.precision))
    lows, ups = [], []
    for seed in range(40):
        g = _gen(100 + seed)
        lows.append(float(ais(energy, 4, n_chains=8, n_temps=2, base_std=2.0, generator=g).log_z))
        exact = energy.mean + torch.randn(8, 4, generator=g, dtype=torch.float64) @ chol.T
        ups.append(float(reverse_ais(energy, exact, n_temps=2, base_std=2.0, generator=g).log_z))
    lows, ups = torch.tensor(lows) - log_z, torch.tensor(ups) - log_z
    assert lows.mean() + 2 * lows.std() / math.sqrt(40) < 0
    assert ups.mean() - 2 * ups.std() / math.sqrt(40) > 0


def test_mixture_sandwich_with_exact_samples():
    energy = Mixture(4)
    exact = energy.sample(256, _gen(9))
    lower = ais(energy, 4, n_chains=256, n_temps=500, base_std=2.0, generator=_gen(10))
    upper = reverse_ais(energy, exact, n_temps=500, base_std=2.0, generator=_gen(11))
    assert float(lower.log_z) - 3 * float(lower.stderr) <= -3.0
    assert -3.0 <= float(upper.log_z) + 3 * float(upper.stderr)


# ---- shapes, dtypes, determinism --------------------------------------------------------------


def test_event_shapes_column_energies_and_float32():
    def energy(x):  # (B, 2, 2) -> (B, 1): N(0, I₄) as images, a column of energies
        return 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True)

    r = ais(energy, (2, 2), n_chains=64, n_temps=200, generator=_gen(12))
    assert r.samples.shape == (64, 2, 2) and r.samples.dtype == torch.float32
    assert r.log_weights.dtype == torch.float64
    assert abs(float(r.log_z) - 2 * math.log(2 * math.pi)) < 0.05


def test_generator_makes_it_reproducible():
    energy, _ = _gaussian(3)
    a = ais(energy, 3, n_chains=16, n_temps=20, generator=_gen(13))
    b = ais(energy, 3, n_chains=16, n_temps=20, generator=_gen(13))
    assert torch.equal(a.log_weights, b.log_weights)


def test_without_adaptation_the_step_stays():
    energy, log_z = _gaussian(2)
    r = ais(energy, 2, n_chains=128, n_temps=300, step_size=0.3, adapt=False, generator=_gen(14))
    assert float(r.step_size) == pytest.approx(0.3)
    assert abs(float(r.log_z) - log_z) < 0.05


def test_log_likelihood_matches_the_gaussian_density():
    energy, log_z = _gaussian(3)
    mvn = torch.distributions.MultivariateNormal(energy.mean, precision_matrix=energy.precision)
    x = mvn.sample((5,))
    exact = log_likelihood(energy, x, log_z=log_z)
    torch.testing.assert_close(exact, mvn.log_prob(x))
    estimated = log_likelihood(energy, x, generator=_gen(15))  # log Z by AIS, defaults
    assert estimated.dtype == torch.float64
    assert (estimated - mvn.log_prob(x)).abs().max() < 0.05
    r = ais(energy, 3, n_chains=64, n_temps=100, generator=_gen(16))
    torch.testing.assert_close(log_likelihood(energy, x, log_z=r), -energy(x) - r.log_z)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda e: ais(e, 0), "dim"),
        (lambda e: ais(e, 2, n_chains=1), "n_chains"),
        (lambda e: ais(e, 2, base_std=0.0), "base_std"),
        (lambda e: ais(e, 2, kernel="nuts"), "kernel"),
        (lambda e: ais(e, 2, schedule="cosine"), "schedule"),
        (lambda e: ais(e, 2, generator=3), "generator"),
        (lambda e: reverse_ais(e, torch.zeros(1, 2)), "samples"),
        (lambda e: reverse_ais(e, [[0.0, float("nan")]] * 3), "samples"),
        (lambda e: log_likelihood(e, torch.zeros(2, 2), log_z=float("inf")), "log_z"),
        (lambda e: log_likelihood(e, torch.zeros(2, 2), log_z="1"), "log_z"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    energy, _ = _gaussian(2)
    with pytest.raises(ValueError, match=name):
        call(energy)


def test_wrong_energy_shape_is_refused():
    with pytest.raises(
        ValueError,
        match=r"energy must return one value per sample, shape \(4,\) or \(4, 1\), got \(4, 2\)",
    ):
        ais(lambda x: x, 2, n_chains=4, n_temps=2)
