"""Kernel Stein discrepancy and its test: the Stein kernel against autograd, unbiasedness under
the null, uniform p-values, power, and chunking."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from ebm.energies import GaussianEnergy
from ebm.metrics import kernel_stein_discrepancy, ksd_test
from ebm.metrics.stein import _stein_block


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _std_score(x: torch.Tensor) -> torch.Tensor:
    return -x  # ∇ log N(0, I)


def _kernel(name, a, b, c):
    r2 = (a - b).pow(2).sum()
    return (c**2 + r2) ** -0.5 if name == "imq" else torch.exp(-r2 / (2 * c**2))


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_stein_kernel_matches_autograd(kernel):
    # u_p(x, y) = s(x)ᵀs(y)k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr ∇_x∇_y k, derivatives by autograd
    g = _gen(0)
    x, y, sx, sy = (torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (4, 5, 4, 5))
    c = torch.tensor(1.3, dtype=torch.float64)
    ref = torch.zeros(4, 5, dtype=torch.float64)
    for i in range(4):
        for j in range(5):
            a, b = x[i].clone().requires_grad_(), y[j].clone().requires_grad_()
            k = _kernel(kernel, a, b, c)
            ga, gb = torch.autograd.grad(k, (a, b), create_graph=True)
            trace = sum(torch.autograd.grad(gb[m], a, retain_graph=True)[0][m] for m in range(3))
            ref[i, j] = (sx[i] @ sy[j]) * k + sx[i] @ gb + sy[j] @ ga + trace
    torch.testing.assert_close(_stein_block(x, sx, y, sy, kernel, c), ref)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_chunked_equals_unchunked_and_the_double_sum(kernel):
    x = torch.randn(37, 2, generator=_gen(1), dtype=torch.float64) + 0.3
    one_block = kernel_stein_discrepancy(x, _std_score, kernel=kernel, chunk_size=1000)
    for chunk in (1, 5, 36):
        torch.testing.assert_close(
            kernel_stein_discrepancy(x, _std_score, kernel=kernel, chunk_size=chunk), one_block
        )
    scale = torch.tensor(1.0, dtype=torch.float64)
    if kernel == "rbf":
        scale = torch.pdist(x).median()
    u = _stein_block(x, -x, x, -x, kernel, scale)
    torch.testing.assert_close(one_block, (u.sum() - u.diagonal().sum()) / (37 * 36))


def test_unbiased_near_zero_for_exact_samples_and_large_when_shifted():
    values = torch.stack(
        [
            kernel_stein_discrepancy(torch.randn(200, 2, generator=_gen(s)), _std_score)
            for s in range(30)
        ]
    )
    null_se = values.std() / math.sqrt(30)
    assert abs(float(values.mean())) < 3 * float(null_se)  # E[KSD²] = 0 under the null
    shifted = kernel_stein_discrepancy(torch.randn(200, 2, generator=_gen(99)) + 0.5, _std_score)
    assert float(shifted) > 10 * float(values.std())


def test_energy_and_score_give_the_same_value():
    mean, cov = torch.tensor([0.5, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]])
    energy = GaussianEnergy(mean, cov)
    precision = torch.linalg.inv(cov)
    x = torch.randn(50, 2, generator=_gen(2))
    by_score = kernel_stein_discrepancy(x, lambda x: -(x - mean) @ precision)
    by_module = kernel_stein_discrepancy(x, energy)  # an nn.Module: score = −∇E
    by_function = kernel_stein_discrepancy(x, lambda x: energy(x))  # (B,) energies
    by_method = kernel_stein_discrepancy(x, energy.score)  # (B, D): a score
    for other in (by_module, by_function, by_method):
        torch.testing.assert_close(other, by_score, rtol=1e-5, atol=1e-6)


def test_p_values_are_uniform_under_the_null():
    g = _gen(3)
    p = torch.stack(
        [
            ksd_test(torch.randn(30, 1, generator=g), _std_score, n_bootstrap=200, generator=g)[1]
            for _ in range(100)
        ]
    )
    assert stats.kstest(p.numpy(), "uniform").pvalue > 0.01
    assert 0.01 <= float((p <= 0.05).float().mean()) <= 0.12  # size near the nominal 5 %


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_power_against_a_shifted_gaussian(kernel):
    g = _gen(4)
    x = torch.randn(200, 2, generator=g) + torch.tensor([0.5, 0.0])
    stat, p = ksd_test(x, _std_score, kernel=kernel, n_bootstrap=500, generator=g)
    torch.testing.assert_close(stat, kernel_stein_discrepancy(x, _std_score, kernel=kernel))
    assert float(p) < 0.01
    _, p_null = ksd_test(x, lambda x: -(x - torch.tensor([0.5, 0.0])), kernel=kernel, generator=g)
    assert float(p_null) > 0.05


@pytest.mark.slow
def test_ten_thousand_samples_in_bounded_memory():
    # 10⁴ samples: 10⁸ pairs in 1024 x 1024 blocks (8 MB each in float64)
    x = torch.randn(10_000, 2, generator=_gen(5), dtype=torch.float64)
    assert abs(float(kernel_stein_discrepancy(x, _std_score))) < 1e-3


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(samples=[[0.0, float("nan")], [1.0, 1.0]]), "samples"),
        (dict(samples=torch.zeros(1, 2)), "samples"),
        (dict(kernel="gauss"), "kernel"),
        (dict(bandwidth=0.0), "bandwidth"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(score=3), "score"),
        (dict(score=lambda x: x[:, :1].T), "score"),
        (dict(score=lambda x: torch.full_like(x, float("nan"))), "score"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, name):
    args = dict(samples=torch.randn(5, 2, generator=_gen(6)), score=_std_score) | kwargs
    with pytest.raises(ValueError, match=name):
        kernel_stein_discrepancy(**args)
    with pytest.raises(ValueError, match=name):
        ksd_test(**args, n_bootstrap=3)


def test_ksd_test_checks_its_own_arguments():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="n_bootstrap"):
        ksd_test(x, _std_score, n_bootstrap=0)
    with pytest.raises(ValueError, match="generator"):
        ksd_test(x, _std_score, generator=0)
