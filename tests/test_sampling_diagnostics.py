"""Effective sample size against the AR(1) closed form and Pyro's estimator."""

from __future__ import annotations

import pytest
import torch

from ebm.sampling import effective_sample_size


def _ar1(rho, n_steps, n_chains, d=1, seed=0):
    """x_t = ρ x_{t−1} + √(1 − ρ²) ε_t started in its stationary N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n_steps, n_chains, d, generator=g, dtype=torch.float64)
    x = torch.empty_like(eps)
    x[0] = eps[0]
    for t in range(1, n_steps):
        x[t] = rho * x[t - 1] + (1 - rho**2) ** 0.5 * eps[t]
    return x


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ar1_chains_match_the_closed_form(rho):
    n, m = 4000, 8
    ess = effective_sample_size(_ar1(rho, n, m, d=2))
    expected = n * m * (1 - rho) / (1 + rho)
    assert ess.shape == (2,)
    torch.testing.assert_close(ess, torch.full((2,), expected, dtype=ess.dtype), rtol=0.15, atol=0)


def test_matches_pyro_effective_sample_size():
    from pyro.ops.stats import effective_sample_size as pyro_ess

    x = _ar1(0.7, 500, 4, d=3, seed=1)
    ours = effective_sample_size(x)
    theirs = pyro_ess(x.transpose(0, 1), chain_dim=0, sample_dim=1)  # pyro: (chain, sample, ...)
    # same estimator; Pyro divides lag-k autocovariances by N − k where Stan (and we) use N
    torch.testing.assert_close(ours, theirs, rtol=0.02, atol=0)


def test_stuck_chains_have_tiny_ess():
    x = _ar1(0.0, 400, 4)
    x += torch.arange(4, dtype=x.dtype).view(1, 4, 1) * 10.0  # chains in different places
    assert float(effective_sample_size(x)) < 0.05 * 400 * 4


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="samples"):
        effective_sample_size(torch.randn(3, 2))
    with pytest.raises(ValueError, match="samples"):
        effective_sample_size(torch.randn(10))


def test_integer_chains_give_the_float_result():
    # integer samples used to give an integer (truncated) ESS
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 5, (20, 3, 2), generator=g)
    ref = effective_sample_size(x.double())
    got = effective_sample_size(x)
    assert got.dtype == torch.get_default_dtype()
    torch.testing.assert_close(got, ref.to(got.dtype))
    assert not torch.equal(got, got.round())  # a fractional ESS survives
    torch.testing.assert_close(effective_sample_size(x.double().numpy()), ref)
    torch.testing.assert_close(
        effective_sample_size((x > 2).tolist()), effective_sample_size((x > 2).float())
    )


@pytest.mark.parametrize(
    "samples",
    [
        torch.full((10, 2), float("nan")),
        torch.tensor([[0.0], [1.0], [float("inf")], [2.0], [0.5]]),
        torch.zeros(10, 0),
        "chains",
    ],
)
def test_non_finite_and_malformed_samples_are_rejected(samples):
    with pytest.raises(ValueError, match="samples"):
        effective_sample_size(samples)
