"""ebm.metrics.bootstrap_interval: the percentile bootstrap against scipy and closed forms."""

import numpy as np
import pytest
import torch
from scipy import stats

from ebm.metrics import bootstrap_interval, expected_calibration_error


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ends_match_scipy_percentile_bootstrap():
    """Same data, same percentile method: the ends agree to the Monte-Carlo error of 5000
    resamples (different random indices, so not bit for bit)."""
    x = torch.randn(150, generator=gen(0), dtype=torch.float64).exp()  # skewed: asymmetric ends
    ours = bootstrap_interval(x, torch.median, n_bootstrap=5000, level=0.9, generator=gen(1))
    ref = stats.bootstrap(
        (x.numpy(),),
        np.median,
        n_resamples=5000,
        confidence_level=0.9,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert float(ours.estimate) == pytest.approx(float(np.median(x.numpy())), abs=0.01)
    assert float(ours.low) == pytest.approx(ref.low, abs=0.03)
    assert float(ours.high) == pytest.approx(ref.high, abs=0.03)


def test_replicate_spread_of_the_mean_is_the_plug_in_standard_error():
    """Var*(mean of a resample) = σ̂²/N exactly, with σ̂² the plug-in (1/N) variance."""
    x = torch.randn(80, generator=gen(3), dtype=torch.float64) * 2.0 + 1.0
    r = bootstrap_interval(x, torch.mean, n_bootstrap=8000, generator=gen(4))
    plug_in_se = float(x.std(correction=0)) / 80**0.5
    assert float(r.replicates.std()) == pytest.approx(plug_in_se, rel=0.05)
    assert float(r.replicates.mean()) == pytest.approx(float(x.mean()), abs=0.1 * plug_in_se)


def test_coverage_of_the_mean_is_near_nominal():
    """Over 200 independent N(0, 1) data sets of 60 points, the 90 % interval of the mean covers
    0 about 90 % of the time (binomial sd 2.1 %; the percentile method under-covers slightly at
    small N)."""
    g = gen(5)
    hits = 0
    for _ in range(200):
        x = torch.randn(60, generator=g)
        r = bootstrap_interval(x, torch.mean, n_bootstrap=300, level=0.9, generator=g)
        hits += bool(r.low <= 0 <= r.high)
    assert 0.82 <= hits / 200 <= 0.96


def test_pairs_are_resampled_together():
    """q = p + 0.25 row by row: every paired resample of mean(q) − mean(p) is exactly 0.25,
    which resampling the two samples independently would not give."""
    p = torch.rand(50, generator=gen(6), dtype=torch.float64)
    r = bootstrap_interval((p, p + 0.25), lambda a, b: (b - a).mean(), generator=gen(7))
    assert torch.allclose(r.replicates, torch.full_like(r.replicates, 0.25))
    assert float(r.low) == pytest.approx(0.25) and float(r.high) == pytest.approx(0.25)


def test_levels_nest_and_a_seeded_generator_repeats():
    x = torch.randn(40, generator=gen(8))
    wide = bootstrap_interval(x, torch.mean, level=0.95, generator=gen(9))
    narrow = bootstrap_interval(x, torch.mean, level=0.5, generator=gen(9))
    assert wide.low < narrow.low < narrow.high < wide.high
    again = bootstrap_interval(x, torch.mean, level=0.95, generator=gen(9))
    assert torch.equal(wide.replicates, again.replicates)


def test_labels_keep_their_dtype_and_ece_difference_runs():
    """The use it was built for: the interval of ECE(p) − ECE(q) on the same test points."""
    probs = torch.softmax(torch.randn(300, 4, generator=gen(10)) * 3, 1)
    labels = torch.multinomial(probs, 1, generator=gen(11)).squeeze(1)  # calibrated by design
    sharper = torch.softmax(probs.log() * 3, 1)  # over-confident

    def gap(p, q, y):
        assert y.dtype == torch.int64
        return expected_calibration_error(q, y) - expected_calibration_error(p, y)

    r = bootstrap_interval((probs, sharper, labels), gap, generator=gen(12))
    assert r.low > 0  # the over-confident model is worse, and the interval says so


def test_a_nan_replicate_gives_nan_ends():
    x = torch.tensor([1.0, 2.0, float("nan"), 4.0])
    r = bootstrap_interval(x, torch.mean, n_bootstrap=200, generator=gen(13))
    assert torch.isnan(r.low) and torch.isnan(r.high)


def test_ends_are_numpys_linear_percentiles_and_survive_infinite_replicates():
    x = torch.randn(30, generator=gen(14))
    r = bootstrap_interval(x, torch.mean, n_bootstrap=501, level=0.8, generator=gen(15))
    expected = np.percentile(r.replicates.numpy(), [10, 90])  # numpy's default: linear
    assert np.allclose([float(r.low), float(r.high)], expected, rtol=0, atol=1e-12)
    # a max over data holding +inf: inf − inf must not turn the upper end into NaN
    y = torch.tensor([1.0, 2.0, 3.0, float("inf")])
    r = bootstrap_interval(y, torch.max, n_bootstrap=200, generator=gen(0))
    assert float(r.high) == float("inf") and float(r.low) == 2.0


def test_array_likes_are_accepted():
    r = bootstrap_interval(
        (np.arange(10.0), [1] * 10), lambda a, b: (a * b).sum(), generator=gen(0)
    )
    assert float(r.estimate) == 45.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=torch.ones(5), statistic="mean"), "statistic must be a callable"),
        (dict(data=(), statistic=torch.mean), "data must be a tensor"),
        (dict(data=(torch.ones(5), torch.ones(4)), statistic=torch.add), r"data\[1\] must have"),
        (dict(data=(torch.tensor(1.0),), statistic=torch.mean), r"data\[0\] must be \(N, ...\)"),
        (dict(data=torch.ones(5), statistic=lambda x: x), "statistic must return one number"),
        (dict(data=torch.ones(5), statistic=torch.mean, level=1.0), "level must be"),
        (dict(data=torch.ones(5), statistic=torch.mean, n_bootstrap=0), "n_bootstrap must be"),
        (dict(data=torch.ones(5), statistic=torch.mean, generator=3), "generator must be"),
        (dict(data=(["a", "b"],), statistic=torch.mean), r"data\[0\] must be"),
        (dict(data=torch.ones(5), statistic=lambda x: None), "one real number.*NoneType"),
        (dict(data=torch.ones(5), statistic=lambda x: "mean"), "one real number.*str"),
        (dict(data=torch.ones(5), statistic=lambda x: x.mean() + 1j), "real number.*complex"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_interval(**kwargs)


def test_repr_summarises_the_replicates():
    r = bootstrap_interval(torch.arange(10.0), torch.mean, n_bootstrap=1000, generator=gen(2))
    text = repr(r)
    assert text.startswith("BootstrapInterval(estimate=4.5, low=") and "<1000 values>" in text
    assert len(text) < 200
