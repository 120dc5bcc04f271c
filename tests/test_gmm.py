"""Gaussian mixtures against scikit-learn, scipy and torch.distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_wine, make_blobs
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from ebm.models import GaussianMixture, NotFittedError

KINDS = ("full", "tied", "diag", "spherical")


def _three_blobs(n: int = 1500, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    scales = torch.tensor([[1.0, 0.3], [0.5, 0.5], [0.8, 1.5]])
    labels = torch.randint(3, (n,), generator=g)
    return centers[labels] + scales[labels] * torch.randn(n, 2, generator=g)


def _full_covariances(gmm: GaussianMixture) -> torch.Tensor:
    k, d = gmm.means_.shape
    cov = gmm.covariances_
    if gmm.covariance_type == "full":
        return cov
    if gmm.covariance_type == "tied":
        return cov.expand(k, d, d)
    if gmm.covariance_type == "diag":
        return torch.diag_embed(cov)
    return cov[:, None, None] * torch.eye(d, dtype=cov.dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_mean_log_likelihood_within_one_percent_of_sklearn(kind):
    Y = _three_blobs()
    ours = GaussianMixture(3, kind, n_init=2, seed=0).fit(Y)
    ref = SkGaussianMixture(3, covariance_type=kind, n_init=2, random_state=0).fit(Y.numpy())
    test = _three_blobs(500, seed=1)
    assert abs(ours.score(test) - ref.score(test.numpy())) <= 0.01 * abs(ref.score(test.numpy()))
    assert ours.covariances_.shape == ref.covariances_.shape


@pytest.mark.parametrize("kind", KINDS)
def test_energy_is_minus_the_mixture_log_density(kind):
    Y = _three_blobs(600, seed=2)
    gmm = GaussianMixture(3, kind, seed=1).fit(Y)
    mixture = MixtureSameFamily(
        Categorical(probs=gmm.weights_), MultivariateNormal(gmm.means_, _full_covariances(gmm))
    )
    query = 4 * torch.randn(200, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(
        gmm.energy(query).numpy(), -mixture.log_prob(query).numpy(), rtol=1e-10
    )
    # and scipy, density by density
    covs = _full_covariances(gmm).numpy()
    density = sum(
        w * multivariate_normal(m, c).pdf(query.numpy())
        for w, m, c in zip(gmm.weights_.numpy(), gmm.means_.numpy(), covs)
    )
    np.testing.assert_allclose(gmm.energy(query).numpy(), -np.log(density), rtol=1e-10)
    assert gmm.energy(query.float()).dtype == torch.float32
    np.testing.assert_allclose(gmm.predict_proba(query).sum(1).numpy(), 1.0, rtol=1e-12)


def test_sample_moments_and_generator():
    Y = _three_blobs(2000, seed=4)
    gmm = GaussianMixture(3, "full", seed=0).fit(Y)
    draws = gmm.sample(40000, generator=torch.Generator().manual_seed(5))
    mean = (gmm.weights_[:, None] * gmm.means_).sum(0)
    second = (
        gmm.weights_[:, None, None]
        * (gmm.covariances_ + gmm.means_[:, :, None] * gmm.means_[:, None, :])
    ).sum(0)
    cov = second - mean[:, None] * mean[None, :]
    assert torch.allclose(draws.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.15)
    gen = torch.Generator().manual_seed
    assert torch.equal(gmm.sample(10, gen(1)), gmm.sample(10, generator=gen(1)))
    assert not torch.equal(gmm.sample(10, gen(1)), gmm.sample(10, gen(2)))
    # without a generator: the model's private one, seeded by the constructor's seed
    again = GaussianMixture(3, "full", seed=0).fit(Y)
    assert not torch.equal(gmm.sample(10), gmm.sample(10))
    assert torch.equal(again.sample(10), GaussianMixture(3, "full", seed=0).fit(Y).sample(10))


def test_sample_seed_is_deprecated_but_still_works():
    gmm = GaussianMixture(2, seed=0).fit(_three_blobs(300, seed=1))
    with pytest.warns(DeprecationWarning, match="generator"):
        old = gmm.sample(10, seed=3)
    assert torch.equal(old, gmm.sample(10, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match=r"\bseed\b"):
        gmm.sample(10, seed=-1)
    with pytest.raises(ValueError, match=r"\bgenerator\b"):
        gmm.sample(10, generator=3)


def test_covariance_floor_keeps_a_collapsed_component_finite():
    # two duplicated points: without the floor their component's covariance would be singular
    Y = torch.cat(
        [torch.randn(200, 2, generator=torch.Generator().manual_seed(6)), torch.ones(2, 2) * 9]
    )
    gmm = GaussianMixture(2, "full", reg_covar=1e-3, seed=0).fit(Y)
    eigenvalues = torch.linalg.eigvalsh(gmm.covariances_)
    assert (eigenvalues >= 1e-3 * (1 - 1e-9)).all()
    assert torch.isfinite(gmm.energy(Y)).all()


def test_bad_input():
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(5).fit(torch.randn(3, 2))  # fewer samples than components
    with pytest.raises(ValueError, match="NaN or inf"):
        GaussianMixture(1).fit(torch.tensor([[0.0, 0.0], [math.nan, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        GaussianMixture(1).fit(torch.tensor([[0.0, 0.0], [math.inf, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(1, "banded").fit(torch.randn(10, 2))
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(1, reg_covar=-1.0).fit(torch.randn(10, 2))
    with pytest.raises(NotFittedError, match="not fitted"):
        GaussianMixture(2).energy(torch.randn(3, 2))
    with pytest.raises(NotFittedError, match="not fitted"):
        GaussianMixture(2).sample(3)


def _collapsing_data(point: float = 9.0) -> torch.Tensor:
    # 100 spread points and 3 copies of one far point: a component on the copies has variance 0
    spread = torch.randn(100, 2, generator=torch.Generator().manual_seed(7))
    return torch.cat([spread, torch.full((3, 2), point)])


@pytest.mark.parametrize("kind", KINDS)
def test_a_collapsed_component_without_floor_raises_naming_reg_covar(kind):
    # "diag" and "spherical" used to return variances of 7e-14 (or NaN) and a likelihood that is
    # only rounding; scikit-learn raises, and so do "full" and "tied" here
    Y = _collapsing_data()
    if kind == "tied":  # the shared covariance cannot collapse on these data: it fits
        gmm = GaussianMixture(2, kind, reg_covar=0.0, seed=0).fit(Y)
        assert torch.isfinite(gmm.covariances_).all()
        assert torch.linalg.eigvalsh(gmm.covariances_).min() > 0.1
        return
    with pytest.raises(ValueError, match=r"reg_covar > 0"):
        GaussianMixture(2, kind, reg_covar=0.0, seed=0).fit(Y)
    # with the default floor the same data fit, and the collapsed component sits on the copies
    gmm = GaussianMixture(2, kind, seed=0).fit(Y)
    assert torch.isfinite(gmm.covariances_).all() and torch.isfinite(gmm.energy(Y)).all()
    assert gmm.predict(torch.full((1, 2), 9.0)).item() == gmm.means_[:, 0].argmax().item()


def test_a_constant_feature_without_floor_raises():
    Y = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 5.0]])
    with pytest.raises(ValueError, match=r"standard deviation along feature 0 is 0.*reg_covar"):
        GaussianMixture(1, "diag", reg_covar=0.0).fit(Y)
    gmm = GaussianMixture(1, "diag", reg_covar=1e-6).fit(Y)
    torch.testing.assert_close(gmm.covariances_[0, 0], torch.tensor(1e-6, dtype=torch.float64))


def test_queries_must_be_finite_and_far_queries_get_no_label():
    gmm = GaussianMixture(3, seed=0).fit(_three_blobs(300))
    for bad in (math.nan, math.inf):
        query = torch.tensor([[0.0, 0.0], [bad, 1.0]])
        for method in (gmm.predict, gmm.predict_proba, gmm.energy, gmm.score_samples, gmm.score):
            # predict used to label a NaN row 0
            with pytest.raises(ValueError, match="Y contains NaN or inf"):
                method(query)
    with pytest.raises(ValueError, match="at least one sample"):
        gmm.score(torch.zeros(0, 2))  # the mean of nothing was NaN
    for method in (gmm.predict, gmm.predict_proba, gmm.energy, gmm.score_samples):
        with pytest.raises(ValueError, match=r"Y must hold at least one sample: got 0 sample"):
            method(torch.zeros(0, 2))  # refused, as scikit-learn does
    far = torch.tensor([[1e200, 0.0]], dtype=torch.float64)
    assert gmm.energy(far).item() == math.inf  # −log p beyond float64: inf, honestly
    for method in (gmm.predict, gmm.predict_proba):
        with pytest.raises(ValueError, match=r"Y rows \[0\] are so far from every component"):
            method(far)
    with pytest.raises(ValueError, match="too large for float64 densities"):
        GaussianMixture(2, seed=0).fit(_three_blobs(50).double() * 1e200)


def test_array_likes_and_integer_data():
    Y = _three_blobs(300, seed=8)
    ref = GaussianMixture(3, seed=0).fit(Y)
    gmm = GaussianMixture(3, seed=0).fit(Y.numpy())
    torch.testing.assert_close(gmm.means_, ref.means_, rtol=0, atol=0)
    query = Y[:5]
    torch.testing.assert_close(ref.energy(query.numpy()).double(), ref.energy(query).double())
    torch.testing.assert_close(ref.energy(query.tolist()), ref.energy(query.double()))
    assert torch.equal(ref.predict(query.tolist()), ref.predict(query))
    # integer data are promoted: a single Gaussian's mean and (biased) variance
    Z = torch.tensor([[0, 0], [2, 0], [0, 4], [2, 4]])
    single = GaussianMixture(1, "diag", reg_covar=0.0).fit(Z)
    torch.testing.assert_close(single.means_, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(single.covariances_, torch.tensor([[1.0, 4.0]], dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"tol": math.nan}, "tol"),
        ({"tol": math.inf}, "tol"),
        ({"tol": -1e-3}, "tol"),
        ({"reg_covar": math.nan}, "reg_covar"),
        ({"reg_covar": math.inf}, "reg_covar"),
        ({"reg_covar": "1e-6"}, "reg_covar"),
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 1.5}, "max_iter"),
        ({"covariance_type": "Full"}, "covariance_type"),
        ({"seed": -3}, "seed"),
    ],
)
def test_hyper_parameters_are_validated_by_name(kwargs, name):
    # tol=nan used to run max_iter iterations, reg_covar=nan to fail in a Cholesky factorisation
    with pytest.raises(ValueError, match=f"{name} must"):
        GaussianMixture(2, **kwargs).fit(_three_blobs(50))
    gmm = GaussianMixture(2, seed=0).fit(_three_blobs(50))
    for n in (0, 2.0, True):
        with pytest.raises(ValueError, match="n must be an int"):
            gmm.sample(n)


# ---- the n_init runs against scikit-learn's (issue 18) ------------------------------------------
# A report that our best of n_init=10 stopped at worse optima than scikit-learn's came from one
# seed (wine, seed 0: -10.76 against -9.52). Measured over seeds there is no gap: from the same
# start both EMs take the same steps and stop at the same iteration, our k-means starts are as
# good as scikit-learn's, and the best of ten runs is at least as good on average. These tests
# keep it so.


def _wine_standardised() -> np.ndarray:
    X = load_wine().data  # bundled with scikit-learn: no download
    return (X - X.mean(0)) / X.std(0)  # StandardScaler's transform


def _eight_blobs() -> np.ndarray:
    # fitted with K = 4 below: fewer components than clusters, so the runs find different optima
    return make_blobs(1000, centers=8, n_features=2, random_state=0)[0]


def _start_from_partition(X: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """scikit-learn's first M-step from a hard partition: weights, means, full precisions."""
    resp = np.eye(k)[labels]
    nk = resp.sum(0)
    means = resp.T @ X / nk[:, None]
    covariances = np.stack(
        [(resp[:, j, None] * (X - means[j])).T @ (X - means[j]) / nk[j] for j in range(k)]
    ) + 1e-6 * np.eye(X.shape[1])
    precisions = np.linalg.inv(covariances)
    precisions = (precisions + precisions.transpose(0, 2, 1)) / 2
    return dict(weights_init=nk / len(X), means_init=means, precisions_init=precisions)


def test_stopping_rule_matches_sklearn_at_the_default_tol():
    # the existing agreement test runs to tol=1e-10; here the default tol=1e-3 decides when to
    # stop, from k-means starts on wine where runs stop after 2 to 13 iterations: the same
    # quantity (the mean log-likelihood before each M-step), the same threshold, the same stop
    X, k = _wine_standardised(), 4
    iterations = set()
    for seed in range(6):
        labels = SkKMeans(k, n_init=1, random_state=seed).fit(X).labels_
        start = _start_from_partition(X, labels, k)
        ours = GaussianMixture(k, "full", **start).fit(X)
        ref = SkGaussianMixture(k, covariance_type="full", **start).fit(X)
        assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
        np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-9)
        np.testing.assert_allclose(ours.means_.numpy(), ref.means_, rtol=1e-7, atol=1e-9)
        iterations.add(ours.n_iter_)
    assert len(iterations) > 1  # the starts differ: the rule is tested at several stops


def test_the_kept_run_has_the_highest_final_bound():
    # the first of n_init runs draws the same k-means start as n_init=1 with the same seed, so
    # keeping the best run can only raise the bound; and the kept parameters (after the last
    # M-step) score at least the bound measured before it (EM never lowers the likelihood)
    X = _wine_standardised()
    gained = 0
    for seed in range(5):
        one = GaussianMixture(4, n_init=1, seed=seed).fit(X)
        best = GaussianMixture(4, n_init=10, seed=seed).fit(X)
        assert best.lower_bound_ >= one.lower_bound_
        assert best.score(X) >= best.lower_bound_ - 1e-12
        gained += best.lower_bound_ > one.lower_bound_ + 1e-3
    assert gained >= 3  # ten starts do find better optima than one on these data


@pytest.mark.parametrize(
    "name, k, tolerance",
    # the tolerance is about one standard error of the seed-to-seed difference of the two
    # libraries' means over these 10 seeds (0.2 on wine, 0.003 on the blobs; measured: ours
    # -10.09 against -10.30 on wine, -4.8474 against -4.8489 on the blobs). Keeping one run
    # instead of the best (-0.74 / -0.0067), random-partition starts (-1.35 / -0.036) or
    # stopping at tol=0.1 (blobs: -0.0084) fall outside it.
    [("wine", 4, 0.25), ("blobs", 4, 0.005)],
)
def test_best_of_n_init_matches_or_beats_sklearn_over_seeds(name, k, tolerance):
    X = _wine_standardised() if name == "wine" else _eight_blobs()
    ours, ref = [], []
    for seed in range(10):
        ours.append(GaussianMixture(k, "full", n_init=10, seed=seed).fit(X).score(X))
        sk = SkGaussianMixture(k, covariance_type="full", n_init=10, random_state=seed)
        ref.append(sk.fit(X).score(X))
    assert np.mean(ours) >= np.mean(ref) - tolerance, (np.mean(ours), np.mean(ref))


def test_diagonal_m_step_chunks_equal_one_pass_per_component():
    """The chunked two-pass Σ_n r_nk (x_nd − μ_kd)² over several chunks (N not a multiple of
    the chunk) equals the per-component products, and keeps a collapsed component's zero."""
    from ebm.models.gmm import _DEVIATION_BLOCK, _weighted_square_deviations

    g = torch.Generator().manual_seed(0)
    k, d = 3, 4
    n = 2 * (_DEVIATION_BLOCK // (k * d)) + 7  # three chunks, the last one short
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * 1e3 + 1e6
    resp = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), 1)
    resp[:, 2] = 0.0
    resp[:5, 2] = 1.0
    X[:5] = X[0]  # component 2: five copies of one point, far from the origin
    means = resp.T @ X / resp.sum(0)[:, None]
    expected = torch.stack([resp[:, j] @ (X - means[j]).square() for j in range(k)])
    got = _weighted_square_deviations(X, resp, means)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    assert got[2].abs().max() < 1e-6  # two-pass: E[x²] − E[x]² would leave ~1e-3 here
