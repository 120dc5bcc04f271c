"""Gaussian mixtures against scikit-learn, scipy and torch.distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
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


def test_sample_moments_and_seed():
    Y = _three_blobs(2000, seed=4)
    gmm = GaussianMixture(3, "full", seed=0).fit(Y)
    draws = gmm.sample(40000, seed=5)
    mean = (gmm.weights_[:, None] * gmm.means_).sum(0)
    second = (
        gmm.weights_[:, None, None]
        * (gmm.covariances_ + gmm.means_[:, :, None] * gmm.means_[:, None, :])
    ).sum(0)
    cov = second - mean[:, None] * mean[None, :]
    assert torch.allclose(draws.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.15)
    assert torch.equal(gmm.sample(10, seed=1), gmm.sample(10, seed=1))


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
