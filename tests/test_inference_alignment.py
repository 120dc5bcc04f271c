"""Tests for ebm.inference.soft_dtw and expected_alignment: brute-force enumeration of the
alignments, limits in β, gradients, infinite costs, batches and bad inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ebm.inference import expected_alignment, free_energy, soft_dtw

SIZES = [(1, 1), (1, 4), (4, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 4)]
BETAS = [0.1, 0.7, 3.0, 25.0, math.inf]


def _alignments(n, m):
    """Every monotone path from (0, 0) to (n − 1, m − 1) with steps (1, 0), (0, 1), (1, 1)."""
    if (n, m) == (1, 1):
        return [[(0, 0)]]
    paths = []
    for di, dj in ((1, 0), (0, 1), (1, 1)):
        if n - di >= 1 and m - dj >= 1:
            paths += [p + [(n - 1, m - 1)] for p in _alignments(n - di, m - dj)]
    return paths


def _delannoy(a, b):
    return sum(math.comb(a, k) * math.comb(b, k) * 2**k for k in range(min(a, b) + 1))


def _path_energies(cost, paths):
    """(B, A) the cost of each alignment, summed in float64."""
    return torch.stack([sum(cost[:, i, j] for i, j in p) for p in paths], dim=-1)


def _cost(B, n, m, seed=0, dtype=torch.float64):
    return torch.rand(B, n, m, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2


def test_alignment_enumeration_counts_are_delannoy_numbers():
    for n, m in SIZES:
        paths = _alignments(n, m)
        assert len(paths) == _delannoy(n - 1, m - 1) == len({tuple(p) for p in paths})


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_soft_dtw_is_the_free_energy_over_all_alignments(n, m):
    cost = _cost(3, n, m, seed=n * 10 + m)
    energies = _path_energies(cost, _alignments(n, m))
    for beta in BETAS:
        expected = free_energy(energies, beta)  # min at β = ∞ (DTW), −(1/β) log Σ exp(−βE)
        torch.testing.assert_close(soft_dtw(cost, beta), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(soft_dtw(cost), energies.min(-1).values)  # default: DTW


@pytest.mark.parametrize(("n", "m"), [(2, 3), (3, 3), (4, 3), (4, 4)])
def test_expected_alignment_is_the_gibbs_marginal_of_each_cell(n, m):
    cost = _cost(2, n, m, seed=7)
    paths = _alignments(n, m)
    energies = _path_energies(cost, paths)
    indicator = torch.zeros(len(paths), n, m, dtype=torch.float64)
    for a, path in enumerate(paths):
        for i, j in path:
            indicator[a, i, j] = 1.0
    for beta in (0.3, 2.0, math.inf):
        if math.isinf(beta):
            p = torch.nn.functional.one_hot(energies.argmin(-1), len(paths)).double()
        else:
            p = torch.softmax(-beta * energies, dim=-1)
        expected = torch.einsum("ba,aij->bij", p, indicator)
        got = expected_alignment(cost, beta)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
        # the corners are on every path; every row and column is visited at least once
        assert torch.allclose(got[:, 0, 0], torch.ones(2, dtype=torch.float64))
        assert torch.allclose(got[:, -1, -1], torch.ones(2, dtype=torch.float64))
        assert (got.sum(2) >= 1 - 1e-12).all() and (got.sum(1) >= 1 - 1e-12).all()
        length = (p * torch.tensor([len(q) for q in paths], dtype=torch.float64)).sum(-1)
        torch.testing.assert_close(got.sum((1, 2)), length)
        assert not got.requires_grad


def test_zero_temperature_alignment_is_the_dtw_path_and_soft_dtw_is_below_dtw():
    cost = _cost(4, 6, 5, seed=3)
    hard = expected_alignment(cost)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    dtw = soft_dtw(cost)
    torch.testing.assert_close((hard * cost).sum((1, 2)), dtw)  # the path's cost is DTW
    values = torch.stack([soft_dtw(cost, b) for b in (0.1, 1.0, 10.0, 100.0, 1e4)])
    assert (values.diff(dim=0) > 0).all()  # increasing in β, up to DTW
    assert (values <= dtw).all()
    torch.testing.assert_close(values[-1], dtw, atol=1e-3, rtol=0)


def test_high_temperature_limit_is_minus_log_count_plus_mean_path_cost():
    # β → 0: F_β = −log(D)/β + mean_A E(A) + O(β), D = D(n − 1, m − 1) alignments
    n, m = 4, 3
    cost = _cost(2, n, m, seed=5)
    mean = _path_energies(cost, _alignments(n, m)).mean(-1)
    for beta in (1e-3, 1e-5):
        shifted = soft_dtw(cost, beta) + math.log(_delannoy(n - 1, m - 1)) / beta
        torch.testing.assert_close(shifted, mean, atol=30 * beta, rtol=0)


def test_one_row_has_one_alignment_and_transposing_changes_nothing():
    cost = _cost(3, 1, 5, seed=2)
    for beta in (0.5, math.inf):
        torch.testing.assert_close(soft_dtw(cost, beta), cost.sum((1, 2)))
        torch.testing.assert_close(soft_dtw(cost.transpose(1, 2), beta), cost.sum((1, 2)))
    cost = _cost(3, 4, 6, seed=4)
    for beta in (0.5, math.inf):
        torch.testing.assert_close(soft_dtw(cost, beta), soft_dtw(cost.transpose(1, 2), beta))


def test_dtw_of_a_sequence_against_a_time_warped_copy_is_zero():
    x = torch.tensor([0.0, 1.0, 3.0, 2.0, 2.0, -1.0])
    warped = x[[0, 0, 1, 2, 2, 2, 3, 4, 5, 5]]  # every element repeated 1-3 times
    cost = (x[:, None] - warped[None, :]).pow(2)[None]
    assert soft_dtw(cost).item() == 0.0
    assert soft_dtw(cost, 1e6).item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("beta", [0.5, 4.0, math.inf])
def test_gradcheck(beta):
    cost = _cost(2, 4, 5, seed=11).requires_grad_(True)  # no ties at β = ∞
    assert torch.autograd.gradcheck(lambda c: soft_dtw(c, beta), (cost,))


def test_gradient_is_the_expected_alignment_and_matches_autograd_through_the_brute_force():
    cost = _cost(3, 4, 3, seed=12).requires_grad_(True)
    energies = _path_energies(cost, _alignments(4, 3))
    for beta in (0.8, math.inf):
        (ours,) = torch.autograd.grad(soft_dtw(cost, beta).sum(), cost)
        (brute,) = torch.autograd.grad(free_energy(energies, beta).sum(), cost, retain_graph=True)
        torch.testing.assert_close(ours, brute)
        torch.testing.assert_close(ours, expected_alignment(cost, beta))


def test_ties_at_zero_temperature_share_the_gradient():
    cost = torch.zeros(1, 2, 2)  # three alignments of cost 0
    grad = expected_alignment(cost)
    # min splits its gradient equally at each tie: the diagonal and each corner path
    assert grad[0, 0, 0] == 1 and grad[0, 1, 1] == 1
    assert grad.sum().item() == pytest.approx(1 + 1 + 2 * grad[0, 0, 1].item())
    assert 0 < grad[0, 0, 1] < 1 and grad[0, 0, 1] == grad[0, 1, 0]


def test_large_beta_is_finite_and_close_to_dtw_in_float32():
    cost = (_cost(3, 20, 15, seed=1) * 1e3).float().requires_grad_(True)
    value = soft_dtw(cost, 1e6)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value, soft_dtw(cost.detach()), rtol=1e-6, atol=1e-3)
    (grad,) = torch.autograd.grad(value.sum(), cost)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, expected_alignment(cost.detach()))
    small = soft_dtw(cost.detach(), 1e-6)  # tiny β: −log(D)/β, huge but finite
    assert torch.isfinite(small).all() and (small < -1e6).all()


def test_infinite_costs_forbid_cells():
    n, m = 4, 4
    cost = _cost(2, n, m, seed=8)
    band = torch.tensor([[abs(i - j) <= 1 for j in range(m)] for i in range(n)])
    banded = torch.where(band, cost, math.inf).requires_grad_(True)
    allowed = [p for p in _alignments(n, m) if all(band[i, j] for i, j in p)]
    energies = _path_energies(cost, allowed)
    for beta in (0.5, math.inf):
        torch.testing.assert_close(soft_dtw(banded, beta), free_energy(energies, beta))
        (grad,) = torch.autograd.grad(soft_dtw(banded, beta).sum(), banded)
        assert torch.isfinite(grad).all() and (grad[:, ~band] == 0).all()
    # every alignment forbidden: +inf, no distribution over alignments (NaN), zero gradient
    blocked = cost.clone()
    blocked[0, 1:, 1:] = math.inf
    blocked[0, 0, :] = blocked[0, :, 0] = math.inf
    blocked.requires_grad_(True)
    for beta in (0.5, math.inf):
        value = soft_dtw(blocked, beta)
        assert value[0].item() == math.inf and math.isfinite(value[1].item())
        (grad,) = torch.autograd.grad(value.sum(), blocked)
        assert (grad[0] == 0).all() and torch.isfinite(grad).all()
        alignment = expected_alignment(blocked, beta)
        assert alignment[0].isnan().all() and torch.isfinite(alignment[1]).all()
    minus = cost.clone()
    minus[0, 2, 1] = -math.inf
    assert soft_dtw(minus, 0.5)[0].item() == -math.inf


def test_nan_stays_in_its_problem():
    cost = _cost(3, 3, 4, seed=9)
    cost[1, 2, 0] = math.nan  # a cell few alignments use: it still poisons the sum
    for beta in (0.5, math.inf):
        value = soft_dtw(cost, beta)
        assert math.isnan(value[1].item()) and torch.isfinite(value[[0, 2]]).all()


def test_batch_problems_are_independent():
    cost = _cost(5, 6, 4, seed=10)
    for beta in (0.5, math.inf):
        whole = soft_dtw(cost, beta)
        alone = torch.cat([soft_dtw(cost[b : b + 1], beta) for b in range(5)])
        torch.testing.assert_close(whole, alone, rtol=1e-14, atol=0)
        torch.testing.assert_close(
            expected_alignment(cost, beta)[2], expected_alignment(cost[2:3], beta)[0]
        )
    assert soft_dtw(torch.zeros(0, 3, 2)).shape == (0,)


def test_dtypes_and_array_likes():
    cost = _cost(2, 5, 3, seed=6)
    for beta in (0.5, math.inf):
        single = soft_dtw(cost.float(), beta)
        assert single.dtype == torch.float32
        torch.testing.assert_close(single.double(), soft_dtw(cost, beta), rtol=1e-5, atol=1e-5)
    integer = [[[0, 1, 2], [1, 0, 1]]]
    expected = soft_dtw(torch.tensor(integer, dtype=torch.float32), 1.0)
    torch.testing.assert_close(soft_dtw(integer, 1.0), expected)
    torch.testing.assert_close(soft_dtw(np.array(integer), 1.0), expected)
    torch.testing.assert_close(soft_dtw(torch.tensor(integer), 1.0), expected)


def test_double_backward_is_refused():
    cost = _cost(1, 3, 3).requires_grad_(True)
    with pytest.raises(RuntimeError, match="soft_dtw has first derivatives only"):
        torch.autograd.grad(soft_dtw(cost, 1.0).sum(), cost, create_graph=True)


def test_rejects_bad_input():
    for bad in (torch.zeros(3, 3), torch.zeros(1, 2, 3, 4)):
        with pytest.raises(ValueError, match="cost must have 3 dimension"):
            soft_dtw(bad)
    for shape in ((2, 0, 3), (2, 3, 0)):
        with pytest.raises(ValueError, match="cost must be \\(B, n, m\\) with n, m >= 1"):
            soft_dtw(torch.zeros(shape))
    for beta in (0.0, -1.0, math.nan, -math.inf, "1", True):
        for fn in (soft_dtw, expected_alignment):
            with pytest.raises(ValueError, match="beta"):
                fn(torch.zeros(1, 2, 2), beta=beta)
    with pytest.raises(ValueError, match="cost must be a tensor or an array-like"):
        expected_alignment("cost")


def test_all_sizes_up_to_four_against_enumeration_at_once():
    # every (n, m) ≤ 4 in one loop, float32 and float64, a few temperatures
    for (n, m), dtype in itertools.product(
        itertools.product(range(1, 5), repeat=2), (torch.float32, torch.float64)
    ):
        cost = _cost(2, n, m, seed=100 + n * 5 + m, dtype=dtype)
        energies = _path_energies(cost.double(), _alignments(n, m))
        for beta in (0.2, 5.0, math.inf):
            torch.testing.assert_close(
                soft_dtw(cost, beta).double(), free_energy(energies, beta), rtol=1e-5, atol=1e-5
            )


def test_expected_alignment_works_without_autograd():
    cost = _cost(2, 5, 4, seed=13)
    expected = expected_alignment(cost, 2.0)
    with torch.inference_mode():
        torch.testing.assert_close(expected_alignment(cost, 2.0), expected)
    with torch.no_grad():
        torch.testing.assert_close(expected_alignment(cost, 2.0), expected)


def test_beta_beyond_the_dtype_range_is_its_limit_not_nan():
    # torch turns 1e39 into inf in float32 (and inf · 0 into NaN): the soft-min clamps β to the
    # dtype's range, where it is already the hard min
    cost = torch.tensor([[[1.0, 2, 3], [4, 0, 6], [7, 8, 1]]])
    assert soft_dtw(cost, 1e39).item() == soft_dtw(cost).item() == 2.0
    assert torch.equal(expected_alignment(cost, 1e39), expected_alignment(cost))
    assert free_energy(torch.tensor([[1.0, 2.0]]), beta=1e39).item() == 1.0
    assert free_energy(torch.tensor([[1.0, 2.0]]), beta=1e300).item() == 1.0
    tiny = expected_alignment(
        torch.rand(1, 3, 3, generator=torch.Generator().manual_seed(0)), 1e-41
    )
    assert torch.isfinite(tiny).all()  # the near-uniform Gibbs distribution, not NaN
