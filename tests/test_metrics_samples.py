import math

import numpy as np
import pytest
import scipy.stats
import torch

from ebm.data.toy2d import ring_centers
from ebm.metrics import energy_distance, mmd, mode_counts, mode_coverage
from ebm.metrics.samples import median_bandwidth


def test_mmd_by_hand_on_two_points_each():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])

    def k(d):  # the RBF kernel with h = 1
        return math.exp(-(d**2) / 2)

    xx, yy = k(1), k(2)  # the single off-diagonal pair of each set
    xy = (k(0) + k(2) + k(1) + k(1)) / 4
    assert mmd(x, y, bandwidth=1.0).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-6)
    # pooled pairwise distances 1, 0, 2, 1, 1, 2: the median is 1, so the heuristic agrees
    assert median_bandwidth(x, y).item() == pytest.approx(1.0)
    assert mmd(x, y).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-6)


def test_mmd_is_unbiased_for_equal_distributions():
    # E[MMD²_u] = 0 when both sets come from one distribution; the biased V-statistic
    # (keeping the diagonals) has a positive mean, so this test could tell them apart.
    g = torch.Generator().manual_seed(0)
    values, biased = [], []
    for _ in range(300):
        x, y = torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g)
        values.append(mmd(x, y, bandwidth=1.0).item())
        kxx = torch.exp(-(torch.cdist(x, x) ** 2) / 2).mean()
        kyy = torch.exp(-(torch.cdist(y, y) ** 2) / 2).mean()
        kxy = torch.exp(-(torch.cdist(x, y) ** 2) / 2).mean()
        biased.append((kxx + kyy - 2 * kxy).item())
    values = np.array(values)
    stderr = values.std() / math.sqrt(len(values))
    assert abs(values.mean()) < 3 * stderr
    assert np.mean(biased) > 10 * stderr
    assert (values < 0).any()  # unbiased: it can go negative


def test_mmd_separates_shifted_distributions():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g)
    assert mmd(x, y + 1.0) > 20 * mmd(x, y).abs()


def test_energy_distance_matches_scipy_in_1d():
    # scipy.stats.energy_distance returns sqrt(2E|X-Y| - E|X-X'| - E|Y-Y'|) for the empirical
    # distributions; ours is the quantity under the root (Székely's D², a V-statistic).
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=37), rng.normal(0.5, 2.0, size=23)
    ours = energy_distance(torch.tensor(a)[:, None], torch.tensor(b)[:, None]).item()
    assert ours == pytest.approx(scipy.stats.energy_distance(a, b) ** 2, rel=1e-10)


def test_energy_distance_by_hand_and_zero_on_equal_sets():
    x, y = torch.tensor([[0.0, 0.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    # E|X-Y| = (0 + 0 + 5 + 5)/4, E|X-X'| = (0 + 5 + 5 + 0)/4, E|Y-Y'| = 0
    assert energy_distance(x, y).item() == pytest.approx(2 * 2.5 - 2.5 - 0)
    assert energy_distance(x, x.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_mode_coverage_on_constructed_samples():
    centers, std = ring_centers(8, 2.0), 0.02
    off = torch.tensor([[0.05, 0.0]])  # 2.5σ: high quality
    good = [centers[k] + off for k in range(6) for _ in range(4)]  # 6 modes × 4 samples
    good += [centers[6] + off] * 2  # 2 samples: below min_count=3, mode 6 not covered
    bad = [torch.zeros(2), centers[7] + torch.tensor([0.07, 0.0])]  # 3.5σ: not high quality
    samples = torch.stack([*(s.squeeze(0) for s in good), *bad])
    covered, quality = mode_coverage(samples, centers, std)
    assert covered == 6
    assert quality == pytest.approx(26 / 28)
    assert mode_coverage(samples, centers, std, min_count=2)[0] == 7
    # per mode: 4 high-quality samples at modes 0-5, 2 at mode 6, none at mode 7 (3.5σ away);
    # the origin is nearest to some mode but 2 away from it, so it counts nowhere
    assert mode_counts(samples, centers, std).tolist() == [4] * 6 + [2, 0]


def test_mode_coverage_of_the_data_itself():
    from ebm.data import grid_of_gaussians
    from ebm.data.toy2d import grid_centers

    covered, quality = mode_coverage(
        grid_of_gaussians(2500, generator=torch.Generator().manual_seed(0)), grid_centers(), 0.02
    )
    assert covered == 25
    # P(|N(0, I₂)| <= 3) = 1 - exp(-9/2) ≈ 0.989
    assert quality == pytest.approx(1 - math.exp(-4.5), abs=0.006)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mmd(torch.zeros(5), torch.zeros(5, 1)), "x must have 2"),
        (lambda: mmd(torch.zeros(5, 2), torch.zeros(5, 3)), "feature dimension"),
        (lambda: energy_distance(torch.zeros(1, 2), torch.zeros(5, 2)), "at least 2"),
        (lambda: mmd(torch.zeros(3, 2), torch.ones(3, 2), bandwidth=-1.0), "bandwidth"),
        (lambda: mode_coverage(torch.zeros(3, 2), torch.zeros(2, 3), 0.1), "share the dimension"),
        (lambda: mode_coverage(torch.zeros(3, 2), torch.zeros(2, 2), 0.0), "std"),
        (lambda: mode_counts(torch.zeros(3, 2), torch.zeros(2, 3), 0.1), "share the dimension"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- the input convention (issue 12) --------------------------------------------------------


def test_array_likes_and_integers_give_the_float_result():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-3, 4, (12, 2), generator=g)
    y = torch.randint(-2, 5, (9, 2), generator=g)
    ref_mmd = mmd(x.double(), y.double(), bandwidth=1.5)
    torch.testing.assert_close(mmd(x.double().numpy(), y.double().tolist(), bandwidth=1.5), ref_mmd)
    # integers (tensor, numpy or nested lists) are promoted to the default float dtype
    for xi, yi in ((x, y), (x.numpy(), y.tolist())):
        torch.testing.assert_close(mmd(xi, yi, bandwidth=1.5), ref_mmd.float())
    torch.testing.assert_close(energy_distance(x, y), energy_distance(x.float(), y.float()))
    assert median_bandwidth(x, y).item() == pytest.approx(median_bandwidth(x.float(), y.float()))
    # float32 against float64: computed in float64
    assert energy_distance(x.float(), y.double()).dtype == torch.float64
    centers = [[0.0, 0.0], [2.0, 2.0]]
    assert mode_coverage(x.tolist(), centers, 1.0, min_count=1) == mode_coverage(
        x.float(), torch.tensor(centers), 1.0, min_count=1
    )


def test_median_heuristic_of_coinciding_points_is_refused():
    # most pooled distances 0: the heuristic bandwidth is 0 and the RBF kernel would give NaN
    x = torch.zeros(5, 2)
    y = torch.cat([torch.zeros(4, 2), torch.ones(1, 2)])
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(x, y)
    assert torch.isfinite(mmd(x, y, bandwidth=1.0))


X3 = torch.zeros(3, 2)
NAN = torch.tensor([[0.0, float("nan")], [1.0, 1.0], [2.0, 0.0]])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: mmd(NAN, X3), "x"),
        (lambda: energy_distance(X3, NAN * float("inf")), "y"),
        (lambda: median_bandwidth(X3, NAN), "y"),
        (lambda: mmd(X3, X3 + 1, bandwidth=float("nan")), "bandwidth"),
        (lambda: mmd(X3, X3 + 1, bandwidth=float("inf")), "bandwidth"),
        (lambda: mmd(X3, X3 + 1, bandwidth=0.0), "bandwidth"),
        (lambda: mmd(X3, X3 + 1, bandwidth=True), "bandwidth"),
        (lambda: mmd(X3, X3 + 1, bandwidth="1"), "bandwidth"),
        (lambda: mmd("x", X3), "x"),
        (lambda: energy_distance(torch.zeros(3, 0), torch.zeros(3, 0)), "x"),
        (lambda: mode_coverage(NAN, X3, 0.1), "samples"),
        (lambda: mode_coverage(X3, NAN, 0.1), "centers"),
        (lambda: mode_coverage(torch.zeros(0, 2), X3, 0.1), "samples"),
        (lambda: mode_coverage(X3, torch.zeros(0, 2), 0.1), "centers"),
        (lambda: mode_coverage(X3, X3, float("nan")), "std"),
        (lambda: mode_coverage(X3, X3, True), "std"),
        (lambda: mode_coverage(X3, X3, 0.1, min_count=0), "min_count"),
        (lambda: mode_coverage(X3, X3, 0.1, min_count=2.5), "min_count"),
        (lambda: mode_coverage(X3, X3, 0.1, min_count=True), "min_count"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
