"""Split conformal prediction: the coverage guarantee over many random splits, the sets against a
small numpy reference of APS/RAPS (Romano et al. 2020; Angelopoulos et al. 2021), the quantile's
rank, the infinite case, the predictor contracts and bad inputs.

The guarantee: with n calibration points and exchangeable data, the coverage averaged over the
draw of calibration and test points lies in [1 − α, 1 − α + 1/(n + 1)]; with scores that have no
ties it equals k/(n + 1) exactly, k = ⌈(n + 1)(1 − α)⌉. Each test averages R random splits of a
fixed pool (a random partition keeps the points exchangeable) and allows 4 standard errors of
that mean (the SE from the spread of the R per-split coverages): a correct method fails with
probability ~6e-5 per check, while an off-by-one in k moves the mean by 1/(n + 1) ≈ 8 SE.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ebm.bayes import MCDropout, Prediction, SplitConformalClassifier, SplitConformalRegressor

ALPHA = 0.1
K_SE = 4.0  # Monte-Carlo tolerance: K_SE standard errors of the mean over splits


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rank(n: int, alpha_tenths: int) -> int:
    """⌈(n + 1)(1 − α)⌉ in integers, α = alpha_tenths / 10."""
    return -(-(n + 1) * (10 - alpha_tenths) // 10)


# ---- regression -------------------------------------------------------------------------------

N_POOL, N_CAL, N_SPLITS = 1000, 50, 300


def _regression_pool():
    """x ~ U(−3, 3), y = 2 sin x + (0.2 + 0.4|x|) ε: heteroscedastic noise."""
    g = _gen(0)
    x = 6 * torch.rand(N_POOL, 1, generator=g, dtype=torch.float64) - 3
    noise = 0.2 + 0.4 * x[:, 0].abs()
    y = 2 * torch.sin(x[:, 0]) + noise * torch.randn(N_POOL, generator=g, dtype=torch.float64)
    return x, y


def _mean(x):  # a slightly wrong mean: conformal does not need a good one
    return 1.8 * torch.sin(x[:, 0])


def _mean_std(x):  # a std of the right shape but 40 % too small
    return _mean(x), 0.6 * (0.2 + 0.4 * x[:, 0].abs())


def _quantiles(x):  # a quantile band a little too narrow (±1.4 σ instead of ±1.64 σ)
    mean, std = _mean_std(x)
    return mean - 1.4 * std / 0.6, mean + 1.4 * std / 0.6


PREDICTORS = {"absolute": _mean, "normalized": _mean_std, "cqr": _quantiles}


def _split_coverages(make, x, y, n_cal, n_splits, extra=None):
    """Per-split coverage (and set size or width) of ``make().calibrate(cal).predict(test)``."""
    g = _gen(1)
    coverages, sizes = [], []
    for _ in range(n_splits):
        perm = torch.randperm(len(x), generator=g)
        cal, test = perm[:n_cal], perm[n_cal:]
        model = make().calibrate(x[cal], y[cal])
        covered, size = extra(model, x[test], y[test])
        coverages.append(covered)
        sizes.append(size)
    return torch.tensor(coverages, dtype=torch.float64), torch.tensor(sizes, dtype=torch.float64)


def _interval_coverage(model, x, y):
    lower, upper = model.predict(x)
    return ((lower <= y) & (y <= upper)).double().mean(), (upper - lower).mean()


def _assert_guarantee(coverages: torch.Tensor, n_cal: int, exact: bool = True) -> None:
    mean = coverages.mean().item()
    se = coverages.std().item() / math.sqrt(len(coverages))
    low, high = 1 - ALPHA, 1 - ALPHA + 1 / (n_cal + 1)
    assert low - K_SE * se <= mean, f"mean coverage {mean:.4f} below 1 − α = {low} (SE {se:.4f})"
    if exact:
        assert mean <= high + K_SE * se, f"mean coverage {mean:.4f} above {high:.4f} (SE {se:.4f})"
        expected = _rank(n_cal, 1) / (n_cal + 1)
        assert abs(mean - expected) <= K_SE * se, (mean, expected, se)


@pytest.mark.parametrize("score", ["absolute", "normalized", "cqr"])
def test_regression_coverage_guarantee(score):
    x, y = _regression_pool()
    coverages, widths = _split_coverages(
        lambda: SplitConformalRegressor(PREDICTORS[score], alpha=ALPHA, score=score),
        x,
        y,
        N_CAL,
        N_SPLITS,
        _interval_coverage,
    )
    _assert_guarantee(coverages, N_CAL)
    assert widths.mean() > 0


def test_normalized_and_cqr_adapt_to_the_noise():
    """With heteroscedastic noise the absolute score over-covers where the noise is small and
    under-covers where it is large; the std-normalised score does not (its std has the right
    shape), nor does CQR while its band is nearly right (its correction q̂ is additive)."""
    x, y = _regression_pool()
    cal, test = slice(0, 500), slice(500, None)
    quiet = x[test, 0].abs() < 1
    gaps = {}
    for score, predictor in PREDICTORS.items():
        cp = SplitConformalRegressor(predictor, ALPHA, score).calibrate(x[cal], y[cal])
        lower, upper = cp.predict(x[test])
        covered = ((lower <= y[test]) & (y[test] <= upper)).double()
        gaps[score] = (covered[quiet].mean() - covered[~quiet].mean()).abs().item()
    assert gaps["absolute"] > 0.1
    assert gaps["normalized"] < 0.06 and gaps["cqr"] < 0.06, gaps


def test_intervals_are_the_documented_ones():
    x, y = _regression_pool()
    cal, test = slice(0, 99), slice(99, 120)
    n = 99
    k = _rank(n, 1)  # 90
    for score, predictor in PREDICTORS.items():
        cp = SplitConformalRegressor(predictor, ALPHA, score).calibrate(x[cal], y[cal])
        if score == "absolute":
            scores = (y[cal] - _mean(x[cal])).abs()
        elif score == "normalized":
            mean, std = _mean_std(x[cal])
            scores = (y[cal] - mean).abs() / std
        else:
            lo, hi = _quantiles(x[cal])
            scores = torch.maximum(lo - y[cal], y[cal] - hi)
        q = np.sort(scores.numpy())[k - 1]
        assert cp.quantile_.item() == q
        assert cp.n_calibration_ == n
        lower, upper = cp.predict(x[test])
        assert lower.shape == upper.shape == (21,)
        if score == "absolute":
            torch.testing.assert_close(upper - lower, torch.full((21,), 2 * q, dtype=torch.float64))
        elif score == "normalized":
            mean, std = _mean_std(x[test])
            torch.testing.assert_close(lower, mean - q * std)
            torch.testing.assert_close(upper, mean + q * std)
        else:
            lo, hi = _quantiles(x[test])
            torch.testing.assert_close(lower, lo - q)
            torch.testing.assert_close(upper, hi + q)


def test_cqr_shrinks_a_band_that_is_too_wide():
    x, y = _regression_pool()
    wide = lambda x: tuple(m + s * 5 * d for d in (-1, 1) for m, s in [_mean_std(x)])  # noqa: E731
    cp = SplitConformalRegressor(wide, ALPHA, "cqr").calibrate(x[:200], y[:200])
    assert cp.quantile_ < 0
    lower, upper = cp.predict(x[200:])
    lo, hi = wide(x[200:])
    assert bool((upper - lower < hi - lo).all())


def test_the_rank_is_exact_in_decimal():
    """n = 9, α = 0.1: (n + 1)(1 − α) = 9 exactly, although 10 · 0.9 = 9.000000000000002 in
    floating point: q̂ is the 9th score (the largest), not +inf."""
    scores = torch.arange(1.0, 10.0)  # residuals 1..9
    cp = SplitConformalRegressor(lambda x: x[:, 0], alpha=0.1)
    cp.calibrate(torch.zeros(9, 1), scores)
    assert cp.quantile_.item() == 9.0


def test_too_few_points_give_infinite_intervals_and_sets():
    x, y = _regression_pool()
    with pytest.warns(UserWarning, match="too few for alpha=0.1"):
        cp = SplitConformalRegressor(_mean, alpha=0.1).calibrate(x[:8], y[:8])  # k = 9 > 8
    lower, upper = cp.predict(x[8:12])
    assert bool((lower == -math.inf).all()) and bool((upper == math.inf).all())
    probs = torch.full((4, 3), 1 / 3)
    clf = SplitConformalClassifier(lambda x: probs[: len(x)], alpha=0.1, seed=0)
    with pytest.warns(UserWarning, match="hold every class"):
        clf.calibrate(torch.zeros(4, 1), torch.tensor([0, 1, 2, 0]))
    assert bool(clf.predict(torch.zeros(4, 1)).all())


def test_ebm_bayes_predictors_and_modules():
    """An MCDropout predictor gives the normalised score its Prediction; an nn.Module is called
    on x cast to its dtype (float64 data into a float32 net)."""
    net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1))
    with torch.no_grad():  # weights from a fixed generator, not the global RNG's state
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=_gen(4)))
    mc = MCDropout(net, n_samples=20, seed=0)
    x, y = _regression_pool()
    cp = SplitConformalRegressor(mc, ALPHA, "normalized").calibrate(x[:100], y[:100])
    lower, upper = cp.predict(x[100:110])
    assert lower.dtype == torch.float32 and lower.shape == (10,)
    assert bool((upper > lower).all())
    module = nn.Linear(1, 1)
    cp = SplitConformalRegressor(module, ALPHA).calibrate(x[:100], y[:100])
    assert cp.predict(x[:3])[0].dtype == torch.float32


# ---- classification -----------------------------------------------------------------------------

K = 30


def _classification_pool(n: int = 2000, seed: int = 0):
    """Probabilities whose shape varies by point: half confident (π_(r) ∝ e^{−2r}), half nearly
    flat (∝ e^{−0.05 r}); labels from a rank distribution ∝ e^{−r} in both. APS drags the flat
    points' long tails into their sets; RAPS's rank penalty does not."""
    g = _gen(seed)
    ranks = torch.arange(K, dtype=torch.float64)
    beta = torch.where(torch.rand(n, generator=g) < 0.5, 2.0, 0.05).double()
    shape = torch.softmax(-beta[:, None] * ranks, 1)
    perm = torch.stack([torch.randperm(K, generator=g) for _ in range(n)])  # class at each rank
    probs = torch.empty(n, K, dtype=torch.float64).scatter_(1, perm, shape)
    rank = torch.multinomial(torch.softmax(-ranks, 0), n, replacement=True, generator=g)
    labels = perm[torch.arange(n), rank]
    x = torch.arange(n, dtype=torch.float64)[:, None]  # a point's index: the predictor looks up
    return x, labels, lambda x: probs[x[:, 0].long()]


def _set_coverage(model, x, y):
    sets = model.predict(x)
    return sets[torch.arange(len(y)), y].double().mean(), sets.sum(1).double().mean()


METHODS = {"aps": {}, "raps": {"k_reg": 1, "lam": 0.2}}  # the penalty decides q̂ here


@pytest.mark.parametrize("method", ["aps", "raps"])
def test_classification_coverage_guarantee(method):
    x, y, predictor = _classification_pool()
    n_cal = 100
    make = lambda: SplitConformalClassifier(  # noqa: E731
        predictor, ALPHA, method, seed=0, **METHODS[method]
    )
    coverages, sizes = _split_coverages(make, x, y, n_cal, 200, _set_coverage)
    _assert_guarantee(coverages, n_cal)
    assert 1 <= sizes.mean() < K


def test_raps_sets_are_smaller_than_aps_sets():
    x, y, predictor = _classification_pool()
    results = {}
    for method in ("aps", "raps"):
        cp = SplitConformalClassifier(predictor, ALPHA, method, seed=0, **METHODS[method])
        cp.calibrate(x[:1000], y[:1000])
        results[method] = _set_coverage(cp, x[1000:], y[1000:])
    (cov_aps, size_aps), (cov_raps, size_raps) = results["aps"], results["raps"]
    se = math.sqrt(0.09 / 1000)
    assert cov_aps > 1 - ALPHA - K_SE * se and cov_raps > 1 - ALPHA - K_SE * se
    assert size_raps < 0.5 * size_aps, results  # about 3.4 classes against 14


def test_non_randomized_sets_keep_the_lower_bound():
    x, y, predictor = _classification_pool()
    make = lambda: SplitConformalClassifier(predictor, ALPHA, randomized=False)  # noqa: E731
    coverages, _ = _split_coverages(make, x, y, 100, 100, _set_coverage)
    _assert_guarantee(coverages, 100, exact=False)


def _reference_scores(probs: np.ndarray, u: np.ndarray, lam: float, k_reg: int) -> np.ndarray:
    """The RAPS score of every label, one point at a time (APS: lam = 0):
    E(x, y, u) = Σ_{j < r(y)} π_(j) + u π_(r(y)) + λ max(r(y) − k_reg, 0)."""
    scores = np.empty_like(probs)
    for i, (p, ui) in enumerate(zip(probs, u)):
        order = np.argsort(-p, kind="stable")  # descending, ties by class index
        for r, label in enumerate(order, start=1):
            before = p[order[: r - 1]].sum()
            scores[i, label] = before + ui * p[label] + lam * max(r - k_reg, 0)
    return scores


@pytest.mark.parametrize(
    "method, randomized, k_reg, lam",
    [
        ("aps", True, 1, 0.0),
        ("aps", False, 1, 0.0),
        ("raps", True, 2, 0.1),
        ("raps", False, 0, 0.3),
    ],
)
def test_sets_match_the_numpy_reference(method, randomized, k_reg, lam):
    g = _gen(3)
    n_cal, n_test, k = 60, 40, 6
    probs = torch.softmax(2 * torch.randn(n_cal + n_test, k, generator=g, dtype=torch.float64), 1)
    labels = torch.multinomial(probs, 1, generator=g)[:, 0]
    x = torch.arange(n_cal + n_test, dtype=torch.float64)[:, None]
    cp = SplitConformalClassifier(
        lambda x: probs[x[:, 0].long()], 0.2, method, k_reg, lam, randomized=randomized
    )
    cp.calibrate(x[:n_cal], labels[:n_cal], generator=_gen(7))
    sets = cp.predict(x[n_cal:], generator=_gen(8))
    # the documented draws: u = torch.rand(B, generator=...) on the CPU, in float64
    u_cal = torch.rand(n_cal, generator=_gen(7), dtype=torch.float64).numpy()
    u_test = torch.rand(n_test, generator=_gen(8), dtype=torch.float64).numpy()
    if not randomized:
        u_cal, u_test = np.ones(n_cal), np.ones(n_test)
    lam_used = lam if method == "raps" else 0.0
    p = probs.numpy()
    cal = _reference_scores(p[:n_cal], u_cal, lam_used, k_reg)[np.arange(n_cal), labels[:n_cal]]
    q = np.sort(cal)[_rank(n_cal, 2) - 1]
    np.testing.assert_allclose(cp.scores_.numpy(), cal, rtol=0, atol=1e-12)
    assert cp.quantile_.item() == pytest.approx(q, abs=1e-12)
    expected = _reference_scores(p[n_cal:], u_test, lam_used, k_reg) <= q
    assert np.array_equal(sets.numpy(), expected)


def test_every_set_is_a_top_prefix_and_allow_empty():
    x, y, predictor = _classification_pool(400)
    cp = SplitConformalClassifier(predictor, 0.5, seed=0).calibrate(x[:200], y[:200])
    sets = cp.predict(x[200:])
    probs = predictor(x[200:])
    order = probs.argsort(dim=1, descending=True, stable=True)
    ranked = sets.gather(1, order)
    assert bool((ranked[:, 1:] <= ranked[:, :-1]).all())  # True ... True False ... False
    assert bool((sets.sum(1) == 0).any())  # α = 0.5: some empty sets, as the exact method has
    cp = SplitConformalClassifier(predictor, 0.5, seed=0, allow_empty=False)
    full = cp.calibrate(x[:200], y[:200]).predict(x[200:])
    assert bool((full.sum(1) >= 1).all()) and bool((full >= sets).all())


def test_seed_and_generator_make_it_reproducible():
    x, y, predictor = _classification_pool(300)
    first = SplitConformalClassifier(predictor, seed=5).calibrate(x[:150], y[:150])
    second = SplitConformalClassifier(predictor, seed=5).calibrate(x[:150], y[:150])
    assert torch.equal(first.predict(x[150:]), second.predict(x[150:]))
    a = first.predict(x[150:], generator=_gen(1))
    assert torch.equal(a, second.predict(x[150:], generator=_gen(1)))


def test_a_prediction_of_logit_samples_is_averaged():
    logits = torch.randn(5, 20, 4, generator=_gen(2))

    class Sampler:
        def predict(self, x):
            return Prediction.from_samples(logits[:, x[:, 0].long()])

    x = torch.arange(20.0)[:, None]
    y = torch.randint(0, 4, (20,), generator=_gen(3))
    cp = SplitConformalClassifier(Sampler(), 0.2, randomized=False).calibrate(x, y)
    mean = logits.softmax(-1).mean(0)
    reference = SplitConformalClassifier(lambda x: mean[x[:, 0].long()], 0.2, randomized=False)
    assert torch.equal(cp.scores_, reference.calibrate(x, y).scores_)


# ---- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, math.nan, "0.1", True])
def test_alpha_must_lie_in_the_open_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        SplitConformalRegressor(_mean, alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        SplitConformalClassifier(lambda x: x, alpha=alpha)


def test_bad_arguments_are_named():
    x, y = _regression_pool()
    with pytest.raises(ValueError, match="score"):
        SplitConformalRegressor(_mean, score="quantile")
    with pytest.raises(ValueError, match="predictor"):
        SplitConformalRegressor(3)
    with pytest.raises(ValueError, match="method"):
        SplitConformalClassifier(lambda x: x, method="lac")
    with pytest.raises(ValueError, match="lam"):
        SplitConformalClassifier(lambda x: x, method="raps", lam=-1.0)
    with pytest.raises(ValueError, match="k_reg"):
        SplitConformalClassifier(lambda x: x, method="raps", k_reg=1.5)
    cp = SplitConformalRegressor(_mean)
    with pytest.raises(ValueError, match="not calibrated"):
        cp.predict(x)
    with pytest.raises(ValueError, match="y must have shape"):
        cp.calibrate(x[:10], y[:9])
    with pytest.raises(ValueError, match="x contains NaN"):
        cp.calibrate(torch.full((10, 1), math.nan), y[:10])
    with pytest.raises(ValueError, match=r"predictor\(x\) must have shape"):
        SplitConformalRegressor(lambda x: x.repeat(1, 2)).calibrate(x[:10], y[:10])
    with pytest.raises(ValueError, match=r"predictor\(x\) must return a Prediction or a pair"):
        SplitConformalRegressor(_mean, score="normalized").calibrate(x[:10], y[:10])
    zero_std = lambda x: (_mean(x), torch.zeros(len(x)))  # noqa: E731
    with pytest.raises(ValueError, match="std > 0"):
        SplitConformalRegressor(zero_std, score="normalized").calibrate(x[:10], y[:10])
    with pytest.raises(ValueError, match="quantile predictions"):
        SplitConformalRegressor(
            lambda x: Prediction(_mean(x), _mean(x) ** 2), score="cqr"
        ).calibrate(x[:10], y[:10])
    logits = lambda x: torch.randn(len(x), 3, generator=_gen(0))  # noqa: E731
    with pytest.raises(ValueError, match=r"predictor\(x\) must return class probabilities"):
        SplitConformalClassifier(logits).calibrate(x[:10], torch.zeros(10, dtype=torch.long))
    uniform = lambda x: torch.full((len(x), 3), 1 / 3)  # noqa: E731
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 3\)"):
        SplitConformalClassifier(uniform).calibrate(x[:10], torch.full((10,), 3))
    with pytest.raises(ValueError, match="y must hold integer"):
        SplitConformalClassifier(uniform).calibrate(x[:10], torch.zeros(10))
    with pytest.raises(ValueError, match="generator"):
        SplitConformalClassifier(uniform).calibrate(x[:10], torch.zeros(10, dtype=int), generator=3)


def test_device_agnostic(device):
    """Calibrated on a device, the same q̂ and sets as on the CPU (u is drawn on the CPU)."""
    x, y, predictor = _classification_pool(300)
    on_device = lambda x: predictor(x.cpu()).to(x.device)  # noqa: E731
    cpu = SplitConformalClassifier(predictor, 0.2, "raps", seed=0).calibrate(x[:150], y[:150])
    dev = SplitConformalClassifier(on_device, 0.2, "raps", seed=0)
    dev.calibrate(x[:150].to(device), y[:150].to(device))
    assert dev.quantile_.device.type == device.type
    assert dev.quantile_.item() == cpu.quantile_.item()
    assert torch.equal(dev.predict(x[150:].to(device)).cpu(), cpu.predict(x[150:]))
    xr, yr = _regression_pool()
    reg = SplitConformalRegressor(PREDICTORS["cqr"], 0.2, "cqr").calibrate(
        xr[:50].to(device), yr[:50]
    )
    lower, upper = reg.predict(xr[50:60].to(device))
    assert lower.device.type == device.type
