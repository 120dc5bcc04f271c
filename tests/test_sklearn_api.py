"""scikit-learn fit: the estimators against scikit-learn on the same data, its ``clone``, the
parameter protocol, array-likes, and the options users of scikit-learn reach for."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SkKMeans
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from torch import nn

from ebm.bayes import DeepEnsemble, GPRegressor, SVIRegressor
from ebm.models import PCA, GaussianMixture, KMeans, NotFittedError

KINDS = ("full", "tied", "diag", "spherical")


def _blobs(n: int = 300, seed: int = 0) -> np.ndarray:
    """Three separated 2-D blobs of different spreads, float64 (N, 2)."""
    rng = np.random.default_rng(seed)
    centres, spreads = ([0, 0], [6, 0], [0, 6]), (1.0, 0.5, 1.5)
    return np.concatenate([rng.normal(c, s, (n // 3, 2)) for c, s in zip(centres, spreads)])


def _correlated(n: int = 200, d: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0


def _make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))


def _all_estimators() -> list:
    return [
        PCA(2, whiten=True),
        KMeans(3, init="random", n_init=2, seed=1),
        KMeans(2, init=np.array([[0.0, 0.0], [1.0, 1.0]])),
        GaussianMixture(2, "diag", means_init=np.zeros((2, 2)), seed=3),
        DeepEnsemble(_make_net, n_members=2, max_epochs=2, device="cpu"),
        GPRegressor(lengthscale=0.5, n_steps=2, device="cpu"),
        SVIRegressor(sizes=[1, 4, 1], max_epochs=2, n_samples=3, seed=0, device="cpu"),
    ]


# ---- the parameter protocol and clone -----------------------------------------------------------


@pytest.mark.parametrize("est", _all_estimators(), ids=lambda e: type(e).__name__)
def test_clone_gives_an_unfitted_copy_with_equal_params(est):
    names = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    params = est.get_params()
    assert sorted(params) == sorted(names)  # every constructor argument, nothing else
    assert all(params[name] is getattr(est, name) for name in names)  # stored as given
    copy = clone(est)
    assert type(copy) is type(est) and copy is not est
    for name, value in params.items():
        other = copy.get_params()[name]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(other, value)
        else:
            assert other == value, name
    assert not [k for k in vars(copy) if k.endswith("_") and not k.startswith("_")]


def test_clone_of_a_fitted_estimator_is_unfitted():
    km = KMeans(3, n_init=1, seed=0).fit(_blobs())
    copy = clone(km)
    assert copy.get_params() == km.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(_blobs()[:3])
    # the copy fits to the same answer: the parameters are the whole recipe
    torch.testing.assert_close(copy.fit(_blobs()).cluster_centers_, km.cluster_centers_)


def test_set_params_and_unknown_names():
    km = KMeans(3)
    assert km.set_params(n_clusters=4, tol=0.0) is km
    assert (km.n_clusters, km.tol) == (4, 0.0)
    with pytest.raises(ValueError, match=r"'n_cluster'.*valid parameters are .*'n_clusters'"):
        km.set_params(n_cluster=5)
    with pytest.raises(ValueError, match=r"'bogus'.*'n_components'"):
        PCA(2).set_params(whiten=True, bogus=1)
    # nothing was set by a call that raised
    pca = PCA(2)
    with pytest.raises(ValueError):
        pca.set_params(whiten=True, bogus=1)
    assert pca.whiten is False
    # set_params cannot slip a bad value past fit's checks
    with pytest.raises(ValueError, match=r"\btol\b"):
        KMeans(2).set_params(tol=-1.0).fit(_blobs())
    with pytest.raises(ValueError, match=r"\blr\b"):
        GPRegressor(n_steps=1, device="cpu").set_params(lr=-1.0).fit([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"\bsizes\b"):
        SVIRegressor(max_epochs=1).set_params(sizes=(1,)).fit([[0.0]], [[0.0]])


def test_repr_shows_the_non_default_parameters():
    assert repr(KMeans(3)) == "KMeans(n_clusters=3)"
    assert repr(PCA(2, whiten=True)) == "PCA(n_components=2, whiten=True)"
    assert repr(GaussianMixture(2, "tied", seed=0)) == (
        "GaussianMixture(n_components=2, covariance_type='tied', seed=0)"
    )
    assert "init=array(shape=(2, 2)" in repr(KMeans(2, init=np.zeros((2, 2))))


def test_sklearn_pipeline_and_grid_search_work():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    X = _correlated()
    pipe = make_pipeline(PCA(3), KMeans(3, n_init=2, seed=0)).fit(X)
    assert pipe.predict(X).shape == (len(X),)
    search = GridSearchCV(GaussianMixture(1, seed=0), {"n_components": [1, 3]}, cv=3)
    shuffled = np.random.default_rng(0).permutation(_blobs())  # every fold sees all blobs
    assert search.fit(shuffled).best_params_ == {"n_components": 3}  # three blobs
    # a pipeline's grid reaches our parameters by name ("step__param") and scores with ours
    pipe = make_pipeline(PCA(1, whiten=True), GaussianMixture(1, seed=0))
    grid = {"pca__n_components": [2], "gaussianmixture__n_components": [1, 3]}
    best = GridSearchCV(pipe, grid, cv=3).fit(shuffled).best_params_
    assert best == {"gaussianmixture__n_components": 3, "pca__n_components": 2}


# ---- array-likes ----------------------------------------------------------------------------------


def test_every_estimator_takes_numpy_lists_and_ints():
    X = _blobs()
    rounded = np.round(X)
    tensors = torch.from_numpy(X), torch.from_numpy(rounded)
    for make in (
        lambda: PCA(2, whiten=True),
        lambda: KMeans(3, n_init=2, seed=0),
        lambda: GaussianMixture(3, seed=0),
    ):
        ref = make().fit(tensors[0])
        # numpy keeps float64; lists become the default dtype, as torch.tensor reads them
        for alt, tol in ((X, 1e-12), (X.tolist(), 1e-4)):
            est = make().fit(alt)
            for attr in ("mean_", "cluster_centers_", "means_"):
                if hasattr(ref, attr):
                    got, want = getattr(est, attr), getattr(ref, attr)
                    assert isinstance(got, torch.Tensor)
                    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
        # integer data are promoted (never truncated) and give the float data's answer
        ints = make().fit(rounded.astype(np.int64))
        floats = make().fit(tensors[1].to(torch.get_default_dtype()))
        method = "transform" if hasattr(ref, "transform") else "predict"
        query = rounded[:5].astype(np.int64).tolist()
        out = getattr(ints, method)(query)
        assert isinstance(out, torch.Tensor)
        torch.testing.assert_close(out, getattr(floats, method)(torch.tensor(query)))


def test_bayes_estimators_take_numpy_and_lists():
    x = np.linspace(-2, 2, 8)[:, None]
    y = np.sin(x)
    for make in (
        lambda: DeepEnsemble(_make_net, n_members=2, max_epochs=3, device="cpu"),
        lambda: GPRegressor(n_steps=3, device="cpu"),
        lambda: SVIRegressor(sizes=(1, 4, 1), max_epochs=3, n_samples=3, seed=0, device="cpu"),
    ):
        dtype = torch.get_default_dtype()
        ref = make().fit(torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype))
        for xs, ys in ((x.astype(np.float32), y.astype(np.float32)), (x.tolist(), y.tolist())):
            est = make().fit(xs, ys)
            svi = isinstance(est, SVIRegressor)

            def kwargs(svi=svi):  # a fresh generator per call: both draw the same networks
                return {"generator": torch.Generator().manual_seed(0)} if svi else {}

            got = est.predict(xs[:3], **kwargs())
            want = ref.predict(torch.tensor(x[:3], dtype=dtype), **kwargs())
            assert isinstance(got.mean, torch.Tensor)
            torch.testing.assert_close(got.mean, want.mean, rtol=1e-4, atol=1e-5)


# ---- KMeans -------------------------------------------------------------------------------------


def test_kmeans_transform_fit_transform_fit_predict_match_sklearn():
    X = _blobs()
    init = X[[0, 150, 250]] + 0.5
    ours = KMeans(3, init=init)
    ref = SkKMeans(3, init=init, n_init=1)
    np.testing.assert_array_equal(ours.fit_predict(X).numpy(), ref.fit_predict(X))
    np.testing.assert_allclose(ours.fit_transform(X).numpy(), ref.fit_transform(X), rtol=1e-10)
    query = _blobs(30, seed=1)
    np.testing.assert_allclose(ours.transform(query).numpy(), ref.transform(query), rtol=1e-10)
    assert ours.transform(query).shape == (30, 3)
    np.testing.assert_allclose(ours.score(query), ref.score(query), rtol=1e-10)
    # Euclidean, not squared: the square of transform is the energy's distance matrix
    torch.testing.assert_close(ours.transform(query).square().amin(1), ours.energy(query))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weighted_kmeans_matches_sklearn_from_the_same_init(dtype):
    X = _blobs(seed=2)
    w = np.random.default_rng(3).uniform(0, 3, len(X))
    init = X[[0, 150, 250]] + 0.5
    data = torch.from_numpy(X).to(dtype)
    ours = KMeans(3, init=init, tol=0.0).fit(data, sample_weight=w)
    ref = SkKMeans(3, init=init, n_init=1, tol=0.0).fit(data.numpy(), sample_weight=w)
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=rtol)
    np.testing.assert_allclose(
        ours.cluster_centers_.double().numpy(), ref.cluster_centers_, rtol=rtol, atol=rtol
    )
    np.testing.assert_array_equal(ours.labels_.numpy(), ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.score(X, sample_weight=w), -ours.inertia_, rtol=rtol)


def test_integer_weights_are_repeated_rows():
    X = _blobs(seed=4)
    counts = np.random.default_rng(5).integers(0, 4, len(X))
    init = X[[1, 151, 251]]
    weighted = KMeans(3, init=init, tol=0.0).fit(X, sample_weight=counts)
    repeated = KMeans(3, init=init, tol=0.0).fit(np.repeat(X, counts, axis=0))
    torch.testing.assert_close(weighted.cluster_centers_, repeated.cluster_centers_)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-10)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_weighted_seeding_never_picks_a_zero_weight_row(init):
    X = _blobs(seed=6)
    w = np.ones(len(X))
    w[100:] = 0.0  # only the first blob counts
    km = KMeans(2, init=init, n_init=4, max_iter=1, seed=0).fit(X, sample_weight=w)
    # one Lloyd step from centres in blob 0 leaves them where blob 0's rows are
    assert (km.cluster_centers_[:, 0].abs() < 4).all() and (km.cluster_centers_[:, 1] < 4).all()
    ref = SkKMeans(2, init=init, n_init=4, random_state=0).fit(X, sample_weight=w)
    full = KMeans(2, init=init, n_init=4, seed=0).fit(X, sample_weight=w)
    assert full.inertia_ <= 1.01 * ref.inertia_


def test_weighted_draws_follow_the_weights():
    from ebm.models.kmeans import _kmeans_plusplus, _random_rows

    w = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expected = (w / w.sum()).numpy()
    runs, gen = 20000, torch.Generator().manual_seed(0)
    X = torch.arange(5, dtype=torch.float64)[:, None]  # row n is the point n
    first = _kmeans_plusplus(X, X.square().sum(1), 1, runs, gen, w)[:, 0, 0].long()
    rows = _random_rows(w, runs, 1, 5, gen, "cpu")[:, 0]
    for drawn in (first, rows):
        frequency = torch.bincount(drawn, minlength=5).double().numpy() / runs
        np.testing.assert_allclose(frequency, expected, atol=0.015)  # ~3 standard errors
    # without replacement: K = 4 distinct rows, never the zero-weight one
    distinct = _random_rows(w, 50, 4, 5, gen, "cpu")
    assert all(sorted(r.tolist()) == [1, 2, 3, 4] for r in distinct)


def test_random_init_picks_distinct_rows_and_array_init_runs_once():
    X = _blobs(seed=7)
    km = KMeans(3, init="random", n_init=5, seed=0).fit(X)
    ref = SkKMeans(3, init="random", n_init=5, random_state=0).fit(X)
    assert km.inertia_ <= 1.01 * ref.inertia_
    # given centres and max_iter=1: one Lloyd step from exactly those centres
    init = torch.tensor(X[[0, 1, 2]])
    one = KMeans(3, init=init, n_init=7, max_iter=1).fit(X)
    labels = torch.cdist(torch.from_numpy(X), init).argmin(1)
    means = torch.stack([torch.from_numpy(X)[labels == j].mean(0) for j in range(3)])
    torch.testing.assert_close(one.cluster_centers_, means)


def test_kmeans_bad_init_and_sample_weight_name_the_argument():
    X = _blobs()
    cases = [
        (dict(init=np.zeros((2, 2))), {}, "init"),  # K rows expected
        (dict(init=np.zeros((3, 3))), {}, "init"),  # D columns expected
        (dict(init=[[0.0, np.nan]] * 3), {}, "init"),
        (dict(init="kmeans"), {}, "init"),
        (dict(init=None), {}, "init"),
        ({}, dict(sample_weight=-np.ones(len(X))), "sample_weight"),
        ({}, dict(sample_weight=np.ones(len(X) - 1)), "sample_weight"),
        ({}, dict(sample_weight=np.zeros(len(X))), "sample_weight"),
        ({}, dict(sample_weight=np.full(len(X), np.inf)), "sample_weight"),
        ({}, dict(sample_weight=np.r_[1.0, 1.0, np.zeros(len(X) - 2)]), "sample_weight"),
    ]
    for hyper, fit_kwargs, name in cases:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            KMeans(3, **hyper).fit(X, **fit_kwargs)


# ---- GaussianMixture ----------------------------------------------------------------------------


def _sklearn_start(X: np.ndarray, kind: str) -> dict:
    """A rough sklearn fit's weights, means and precisions: a start for both libraries."""
    rough = SkGaussianMixture(3, covariance_type=kind, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two iterations on purpose
        rough.fit(X)
    return dict(
        weights_init=rough.weights_, means_init=rough.means_, precisions_init=rough.precisions_
    )


@pytest.mark.parametrize("kind", KINDS)
def test_gmm_from_given_inits_converges_to_sklearns_answer(kind):
    X = _blobs(seed=8)
    start = _sklearn_start(X, kind)
    ours = GaussianMixture(3, kind, tol=1e-10, max_iter=500, **start).fit(X)
    ref = SkGaussianMixture(3, covariance_type=kind, tol=1e-10, max_iter=500, **start).fit(X)
    assert ours.n_iter_ == ref.n_iter_
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(ours, attr).numpy(), getattr(ref, attr), rtol=1e-8, atol=1e-10, err_msg=attr
        )
    test = _blobs(60, seed=9)
    np.testing.assert_allclose(ours.score_samples(test).numpy(), ref.score_samples(test), 1e-9)
    np.testing.assert_allclose(ours.score(test), ref.score(test), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(test), ref.bic(test), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(test), ref.aic(test), rtol=1e-10)
    assert ours._n_parameters() == ref._n_parameters()
    np.testing.assert_array_equal(ours.predict(test).numpy(), ref.predict(test))
    fresh = GaussianMixture(3, kind, tol=1e-10, max_iter=500, **start)
    np.testing.assert_array_equal(fresh.fit_predict(X).numpy(), ref.predict(X))


@pytest.mark.parametrize("kind", KINDS)
def test_gmm_precisions_invert_the_covariances(kind):
    gmm = GaussianMixture(2, kind, seed=0).fit(_blobs(seed=10))
    cov, prec, chol = gmm.covariances_, gmm.precisions_, gmm.precisions_cholesky_
    if kind in ("full", "tied"):
        eye = torch.eye(2, dtype=cov.dtype).expand_as(cov)
        torch.testing.assert_close(cov @ prec, eye)
        torch.testing.assert_close(chol @ chol.mT, prec)
        assert torch.equal(chol, chol.triu())  # upper triangular, as scikit-learn's
    else:
        torch.testing.assert_close(cov * prec, torch.ones_like(cov))
        torch.testing.assert_close(chol.square(), prec)


def test_gmm_bic_picks_the_true_number_of_components():
    X = _blobs(seed=11)
    bic = [GaussianMixture(k, seed=0).fit(X).bic(X) for k in (1, 2, 3, 4, 5)]
    assert int(np.argmin(bic)) + 1 == 3


def test_gmm_partial_inits_replace_the_kmeans_start():
    X = _blobs(seed=12)
    start = _sklearn_start(X, "full")
    for given in (("weights_init",), ("means_init",), ("precisions_init",)):
        kwargs = {name: start[name] for name in given}
        ours = GaussianMixture(3, tol=1e-10, max_iter=500, seed=0, **kwargs).fit(X)
        ref = SkGaussianMixture(3, tol=1e-10, max_iter=500, random_state=0, **kwargs).fit(X)
        np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-9)
    # means and precisions given, the weights from k-means: with the blobs' k-means partition
    # (equal sizes, whatever its order) one EM step lands where scikit-learn's does
    kwargs = {name: start[name] for name in ("means_init", "precisions_init")}
    ours = GaussianMixture(3, max_iter=1, seed=0, **kwargs).fit(X)
    ref = SkGaussianMixture(3, max_iter=1, random_state=0, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one iteration on purpose
        ref.fit(X)
    np.testing.assert_allclose(ours.means_.numpy(), ref.means_, rtol=1e-9)
    # all three given: no k-means; a fitted model's own parameters are a fixed point of EM
    fitted = GaussianMixture(3, tol=1e-12, max_iter=1000, seed=0).fit(X)
    again = GaussianMixture(
        3,
        max_iter=1,
        weights_init=fitted.weights_,
        means_init=fitted.means_,
        precisions_init=fitted.precisions_,
    ).fit(X)
    torch.testing.assert_close(again.means_, fitted.means_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(again.lower_bound_, fitted.lower_bound_, rtol=1e-9)


def test_gmm_bad_inits_name_the_argument():
    X = _blobs()
    eye = np.eye(2)
    cases = [
        (dict(weights_init=[0.5, 0.5]), "weights_init"),  # K = 3 weights expected
        (dict(weights_init=[0.5, 0.5, 0.5]), "weights_init"),  # do not sum to 1
        (dict(weights_init=[1.5, -0.5, 0.0]), "weights_init"),
        (dict(means_init=np.zeros((3, 3))), "means_init"),
        (dict(means_init=[[0, 0], [1, np.nan], [2, 2]]), "means_init"),
        (dict(precisions_init=np.stack([eye, eye])), "precisions_init"),  # K = 3 expected
        (dict(precisions_init=np.stack([eye, eye, -eye])), "precisions_init"),  # not PD
        (dict(precisions_init=np.stack([eye, eye, [[1, 0.5], [0, 1]]])), "precisions_init"),
        (dict(covariance_type="diag", precisions_init=np.ones((3, 3))), "precisions_init"),
        (dict(covariance_type="diag", precisions_init=np.zeros((3, 2))), "precisions_init"),
        (dict(covariance_type="spherical", precisions_init=[1.0, -1.0, 1.0]), "precisions_init"),
        (dict(covariance_type="tied", precisions_init=[[1.0, 2.0], [2.0, 1.0]]), "precisions_init"),
    ]
    for hyper, name in cases:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            GaussianMixture(3, **hyper).fit(X)


# ---- PCA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("whiten", [False, True])
def test_pca_matches_sklearn(k, whiten):
    X = _correlated()
    ours = PCA(k, whiten=whiten).fit(X)
    ref = SkPCA(k, whiten=whiten, svd_solver="full").fit(X)
    plain = SkPCA(k, svd_solver="full").fit(X)
    query = _correlated(20, seed=1)
    close = dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.transform(query).numpy(), ref.transform(query), **close)
    np.testing.assert_allclose(ours.fit_transform(X).numpy(), ref.fit_transform(X), **close)
    codes = ref.transform(query)
    np.testing.assert_allclose(
        ours.inverse_transform(codes).numpy(), ref.inverse_transform(codes), **close
    )
    # the probabilistic model is one of the data: sklearn's whiten=False formulas (its
    # whiten=True get_covariance rescales the components, scikit-learn issue #13898)
    np.testing.assert_allclose(ours.get_covariance().numpy(), plain.get_covariance(), **close)
    np.testing.assert_allclose(ours.get_precision().numpy(), plain.get_precision(), **close)
    np.testing.assert_allclose(ours.score_samples(query).numpy(), plain.score_samples(query), 1e-9)
    np.testing.assert_allclose(ours.score(query), plain.score(query), rtol=1e-10)
    eye = torch.eye(X.shape[1], dtype=torch.float64)
    torch.testing.assert_close(ours.get_covariance() @ ours.get_precision(), eye)


def test_pca_whitened_codes_have_unit_variance_and_round_trip():
    X = torch.from_numpy(_correlated(seed=2)).float()
    pca = PCA(3, whiten=True)
    Z = pca.fit_transform(X)
    torch.testing.assert_close(Z.var(0), torch.ones(3), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(Z.mean(0), torch.zeros(3), rtol=0, atol=1e-4)
    assert Z.dtype == torch.float32
    # inverse_transform undoes the whitening: the same points as the unwhitened round trip
    plain = PCA(3).fit(X)
    torch.testing.assert_close(
        pca.inverse_transform(Z), plain.inverse_transform(plain.transform(X)), atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(pca.energy(X), plain.energy(X))  # whitening leaves the energy


def test_pca_score_is_the_gaussian_log_likelihood():
    X = _correlated(seed=3)
    pca = PCA(2).fit(X)
    mvn = torch.distributions.MultivariateNormal(pca.mean_, covariance_matrix=pca.get_covariance())
    query = torch.from_numpy(_correlated(10, seed=4))
    torch.testing.assert_close(pca.score_samples(query), mvn.log_prob(query))
    # with all components kept, probabilistic PCA is the Gaussian of the sample covariance
    full = PCA(5).fit(X)
    torch.testing.assert_close(full.get_covariance(), torch.from_numpy(np.cov(X.T)))


def test_pca_singular_model_and_bad_whiten_raise():
    X = np.random.default_rng(5).normal(size=(4, 6))  # N = 4 < D: σ² = 0 for k = 3
    pca = PCA(3).fit(X)
    for method in ("get_precision", "score"):
        with pytest.raises(ValueError, match="noise_variance_"):
            getattr(pca, method)(*([X] if method == "score" else []))
    with pytest.raises(ValueError, match=r"\bwhiten\b"):
        PCA(2, whiten="yes").fit(_correlated())
    with pytest.raises(NotFittedError):
        PCA(2).get_covariance()


# ---- scikit-learn's own estimator checks, through an adapter ------------------------------------


def _numpy(value):
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


class _SkPCA(PCA):
    """Ours, returning numpy arrays (sklearn's checks compare with numpy's functions)."""

    def transform(self, Y):
        return _numpy(super().transform(Y))

    def fit_transform(self, Y, y=None):
        return _numpy(super().fit_transform(Y))

    def inverse_transform(self, Z):
        return _numpy(super().inverse_transform(Z))


class _SkKMeans(KMeans):
    def predict(self, Y):
        return _numpy(super().predict(Y))

    def transform(self, Y):
        return _numpy(super().transform(Y))

    def fit_predict(self, Y, y=None, sample_weight=None):
        return _numpy(super().fit_predict(Y, sample_weight=sample_weight))

    def fit_transform(self, Y, y=None, sample_weight=None):
        return _numpy(super().fit_transform(Y, sample_weight=sample_weight))


class _SkGaussianMixture(GaussianMixture):
    def predict(self, Y):
        return _numpy(super().predict(Y))

    def predict_proba(self, Y):
        return _numpy(super().predict_proba(Y))

    def score_samples(self, Y):
        return _numpy(super().score_samples(Y))

    def fit_predict(self, Y, y=None):
        return _numpy(super().fit_predict(Y))


# the checks that pass; the others want scikit-learn's own messages ("X has 3 features, but
# ... is expecting 4", "Reshape your data", "0 sample(s) (shape=(0, 3))"), its NotFittedError
# class, object-dtype and sparse inputs, or (KMeans) weights equivalent to repeated rows under
# k-means++ seeding, which scikit-learn's KMeans does not meet either
SKLEARN_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_get_params_invariance",
    "check_set_params",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_dont_overwrite_parameters",
    "check_estimators_overwrite_params",
    "check_estimators_fit_returns_self",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_estimators_dtypes",
    "check_estimators_nan_inf",
    "check_fit2d_1feature",
    "check_fit1d",
    "check_methods_subset_invariance",
    "check_methods_sample_order_invariance",
    "check_dict_unchanged",
    "check_readonly_memmap_input",
)
SKLEARN_CASES = [
    *((lambda: _SkPCA(2), check) for check in (*SKLEARN_CHECKS, "check_transformer_general")),
    *(
        (lambda: _SkKMeans(3, n_init=2, seed=0), check)
        for check in (
            *SKLEARN_CHECKS,
            "check_transformer_general",
            "check_sample_weights_shape",
            "check_sample_weights_list",
            "check_sample_weights_not_an_array",
            "check_sample_weights_not_overwritten",
            "check_all_zero_sample_weights_error",
        )
    ),
    *((lambda: _SkGaussianMixture(2, seed=0), check) for check in SKLEARN_CHECKS),
]


@pytest.mark.parametrize(
    "make,check",
    SKLEARN_CASES,
    ids=[f"{type(make()).__name__[3:]}-{check}" for make, check in SKLEARN_CASES],
)
def test_sklearn_estimator_checks(make, check):
    from sklearn.utils import estimator_checks

    estimator = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' own deprecation and data warnings
        getattr(estimator_checks, check)(type(estimator).__name__, estimator)
