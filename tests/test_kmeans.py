"""k-means against scikit-learn and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.cluster import KMeans as SkKMeans

from ebm.models import KMeans, NotFittedError
from ebm.models.kmeans import _closest


def _blobs(n: int, d: int, k: int, seed: int, spread: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = spread * torch.randn(k, d, generator=g)
    return centers[torch.randint(k, (n,), generator=g)] + torch.randn(n, d, generator=g)


def _brute_sq_dists(Y: torch.Tensor, W: torch.Tensor) -> np.ndarray:
    y, w = Y.double().numpy(), W.double().numpy()
    return np.stack([((y - w[j]) ** 2).sum(1) for j in range(len(w))], axis=1)


@pytest.mark.parametrize(
    "data,k",
    [
        (_blobs(3000, 4, 8, seed=0), 8),
        (_blobs(3000, 4, 8, seed=1), 12),  # more prototypes than blobs
        (torch.randn(2000, 2, generator=torch.Generator().manual_seed(2)), 10),  # no structure
    ],
)
def test_inertia_within_one_percent_of_sklearn(data, k):
    ours = KMeans(k, n_init=5, seed=0).fit(data)
    ref = SkKMeans(k, n_init=5, random_state=0).fit(data.numpy())
    assert ours.inertia_ <= 1.01 * ref.inertia_
    # inertia_ is the sum of squared distances to the assigned centres
    W = ours.cluster_centers_.double()
    np.testing.assert_allclose(
        ours.inertia_, ((data.double() - W[ours.labels_]) ** 2).sum().item(), rtol=1e-5
    )


def test_energy_and_predict_against_brute_force():
    Y = _blobs(1000, 3, 5, seed=3)
    km = KMeans(5, n_init=3, seed=1).fit(Y)
    W = km.cluster_centers_
    assert torch.equal(km.energy(W), torch.zeros(5))  # exactly zero at the prototypes
    query = 3 * torch.randn(300, 3, generator=torch.Generator().manual_seed(4))
    dists = _brute_sq_dists(query, W)
    np.testing.assert_allclose(km.energy(query).numpy(), dists.min(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(km.predict(query).numpy(), dists.argmin(1))
    np.testing.assert_array_equal(km.labels_.numpy(), _brute_sq_dists(Y, W).argmin(1))


def test_free_energy():
    Y = _blobs(500, 2, 4, seed=5)
    km = KMeans(4, n_init=2, seed=0).fit(Y)
    query = 2 * torch.randn(100, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    dists = _brute_sq_dists(query, km.cluster_centers_)
    for beta in (0.05, 1.0, 20.0):
        expected = -logsumexp(-beta * dists, axis=1) / beta
        np.testing.assert_allclose(km.free_energy(query, beta).numpy(), expected, rtol=1e-5)
    energy = km.energy(query)
    assert torch.equal(km.free_energy(query, math.inf), energy)
    assert torch.allclose(km.free_energy(query, 1e6), energy, atol=1e-4)  # β → ∞ limit
    assert (km.free_energy(query, 1.0) <= energy + 1e-6).all()
    with pytest.raises(ValueError, match="beta"):
        km.free_energy(query, 0.0)


def test_seeded_and_leaves_the_global_rng_alone():
    Y = _blobs(800, 2, 6, seed=7)
    state = torch.get_rng_state()
    a = KMeans(6, n_init=3, seed=11).fit(Y)
    b = KMeans(6, n_init=3, seed=11).fit(Y)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.cluster_centers_, b.cluster_centers_)
    assert a.n_iter_ >= 1 and a.cluster_centers_.shape == (6, 2)
    one = KMeans(6, n_init=1, max_iter=1, seed=0).fit(Y)
    assert one.n_iter_ == 1


def test_packed_argmin_picks_a_minimum():
    g = torch.Generator().manual_seed(8)
    for dtype in (torch.float32, torch.float64):
        scores = torch.rand(3, 32, 1000, generator=g, dtype=dtype) * 10  # (R, K, c)
        expected = scores.amin(1)
        chosen = _closest(scores.clone(), 32)
        picked = scores.gather(1, chosen[:, None, :]).squeeze(1)
        assert torch.all(picked <= expected * (1 + 1e-5))
        assert (chosen == scores.argmin(1)).float().mean() > 0.999


def test_bad_input():
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(10).fit(torch.randn(5, 2))  # fewer samples than clusters
    with pytest.raises(ValueError, match="NaN or inf"):
        KMeans(2).fit(torch.tensor([[0.0, 0.0], [1.0, math.nan], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        KMeans(2).fit(torch.tensor([[0.0, 0.0], [1.0, -math.inf], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="n_init"):
        KMeans(2, n_init=0).fit(torch.randn(5, 2))
    with pytest.raises(ValueError, match="tol"):
        KMeans(2, tol=-1.0).fit(torch.randn(5, 2))
    for tol in (math.nan, math.inf, -1e-3, "1e-4", True, None):
        with pytest.raises(ValueError, match="tol must be a finite real number"):
            KMeans(2, tol=tol).fit(torch.randn(5, 2))
    for name, kwargs in (
        ("n_clusters", {"n_clusters": True}),
        ("n_clusters", {"n_clusters": 2.0}),
        ("max_iter", {"n_clusters": 2, "max_iter": 0}),
        ("max_iter", {"n_clusters": 2, "max_iter": 2.5}),
        ("n_init", {"n_clusters": 2, "n_init": "3"}),
        ("seed", {"n_clusters": 2, "seed": -1}),
        ("seed", {"n_clusters": 2, "seed": 1.5}),
    ):
        with pytest.raises(ValueError, match=name):
            KMeans(**kwargs).fit(torch.randn(5, 2))
    with pytest.raises(ValueError, match="Y must be a tensor or an array-like"):
        KMeans(2).fit("data")
    with pytest.raises(ValueError, match="Y must have 2 dimension"):
        KMeans(2).fit(torch.randn(5))
    with pytest.raises(NotFittedError, match="not fitted"):
        KMeans(2).energy(torch.randn(3, 2))
    with pytest.raises(ValueError, match="not fitted"):  # NotFittedError is a ValueError
        KMeans(2).predict(torch.randn(3, 2))


def test_array_likes_and_integer_data():
    Y = _blobs(300, 2, 3, seed=9)
    ref = KMeans(3, n_init=2, seed=0).fit(Y)
    km = KMeans(3, n_init=2, seed=0).fit(Y.numpy())  # float32 array: the same computation
    assert torch.equal(km.cluster_centers_, ref.cluster_centers_) and km.inertia_ == ref.inertia_
    km = KMeans(3, n_init=2, seed=0).fit(Y.tolist())  # Python floats: the default dtype
    assert km.cluster_centers_.dtype == torch.get_default_dtype()
    assert torch.equal(km.cluster_centers_, ref.cluster_centers_)
    km = KMeans(3, n_init=2, seed=0).fit(Y.double().numpy())  # a float64 array stays float64
    assert km.cluster_centers_.dtype == torch.float64
    torch.testing.assert_close(
        km.cluster_centers_, ref.cluster_centers_.double(), rtol=1e-5, atol=0
    )
    query = Y[:7]
    for given in (query.numpy(), query.tolist(), query.double()):
        assert torch.equal(ref.predict(given), ref.predict(query))
        torch.testing.assert_close(ref.energy(given), ref.energy(query))
    # integer data are promoted, not refused or truncated: centres of {0, 1} and {10, 11} are
    # at 0.5 and 10.5
    km = KMeans(2, seed=0).fit(torch.tensor([[0], [1], [10], [11]]))
    assert sorted(km.cluster_centers_[:, 0].tolist()) == [0.5, 10.5]
    assert km.cluster_centers_.dtype == torch.get_default_dtype()


def test_queries_with_nan_or_inf_are_refused():
    km = KMeans(3, n_init=1, seed=0).fit(_blobs(100, 2, 3, seed=10))
    for bad in (math.nan, math.inf, -math.inf):
        query = torch.tensor([[0.0, 0.0], [bad, 1.0]])
        for method in (km.predict, km.energy, lambda y: km.free_energy(y, 1.0)):
            # predict used to label a NaN row 0: a believable wrong answer
            with pytest.raises(ValueError, match="Y contains NaN or inf"):
                method(query)
    with pytest.raises(ValueError, match=r"Y holds values beyond the range of the fitted dtype"):
        km.predict(torch.tensor([[1e300, 0.0]], dtype=torch.float64))  # float32 model
    for method in (km.predict, km.energy, lambda y: km.free_energy(y, 1.0)):
        with pytest.raises(ValueError, match=r"Y must hold at least one sample: got 0 sample"):
            method(torch.zeros(0, 2))  # refused, as scikit-learn does


@pytest.mark.parametrize(
    "scale, dtype",
    [
        (1e30, torch.float32),
        (1e30, torch.float64),
        (1e-30, torch.float32),
        (2.0**100, torch.float32),
    ],
)
def test_any_data_scale_matches_sklearn_on_the_rescaled_data(scale, dtype):
    # at 1e30 float32 squared distances overflow: the old fit returned duplicate centres and an
    # inertia of inf; at 1e-30 they underflow to 0 and every point ties
    Y = _blobs(600, 2, 4, seed=0)
    ref = SkKMeans(4, n_init=3, random_state=0).fit(Y.numpy())
    unit = KMeans(4, n_init=3, seed=0).fit(Y)
    km = KMeans(4, n_init=3, seed=0).fit((Y.double() * scale).to(dtype))
    centers = km.cluster_centers_.double() / scale
    assert math.isfinite(km.inertia_)
    assert km.inertia_ / scale**2 <= 1.01 * ref.inertia_
    assert torch.cdist(centers, centers).add(torch.eye(4) * 1e9).min() > 1.0  # distinct
    torch.testing.assert_close(centers, unit.cluster_centers_.double(), rtol=1e-5, atol=1e-5)
    assert torch.equal(km.labels_, unit.labels_)
    assert torch.equal(km.predict((Y.double() * scale).to(dtype)), unit.labels_)
    if math.log2(scale).is_integer():  # a power of two: the same bits as at unit scale
        assert torch.equal(km.cluster_centers_ / scale, unit.cluster_centers_)


def test_far_queries_get_the_right_label_and_an_infinite_not_nan_energy():
    km = KMeans(4, n_init=2, seed=0).fit(_blobs(400, 2, 4, seed=11))
    far = torch.tensor([[1e30, 0.0], [-1e30, 1e30], [0.0, -3e38], [2.0, 1.0]])
    W = km.cluster_centers_.double()
    # for |y| → ∞ the closest centre maximises y·w − ‖w‖²/2 (the shared ‖y‖² cancels)
    expected = (W.square().sum(1) - 2 * far.double() @ W.T).argmin(1)
    assert torch.equal(km.predict(far), expected)
    # squared distances beyond float32's range are inf, and so are the free energies (were NaN)
    assert torch.isinf(km.energy(far[:3])).all()
    for beta in (0.1, 1.0, math.inf):
        assert torch.isinf(km.free_energy(far[:3], beta)).all()


def test_inertia_beyond_float64_raises():
    with pytest.raises(ValueError, match="inertia of Y overflows float64"):
        KMeans(2, seed=0).fit(_blobs(50, 2, 2, seed=12).double() * 1e200)


def test_free_energy_average_form():
    km = KMeans(4, n_init=2, seed=0).fit(_blobs(300, 2, 4, seed=13))
    query = torch.randn(20, 2, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    dists = _brute_sq_dists(query, km.cluster_centers_)
    for beta in (0.05, 2.0):
        expected = -(logsumexp(-beta * dists, axis=1) - math.log(4)) / beta
        got = km.free_energy(query, beta, average=True).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("k", [200, 300])  # both sides of the packed-min / contiguous-argmin switch
def test_many_clusters_match_scikit_learn_from_the_same_start(k):
    g = torch.Generator().manual_seed(3)
    data = torch.randn(3000, 5, generator=g, dtype=torch.float64)
    start = data[torch.randperm(3000, generator=g)[:k]].numpy()
    ours = KMeans(k, init=start, n_init=1, max_iter=20, tol=0.0).fit(data)
    ref = SkKMeans(k, init=start, n_init=1, max_iter=20, tol=0.0, algorithm="lloyd").fit(
        data.numpy()
    )
    np.testing.assert_array_equal(ours.labels_.numpy(), ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, atol=1e-10)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
