"""PCA and the tied linear autoencoder against scikit-learn's PCA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from ebm.models import PCA, LinearAutoencoder, NotFittedError
from ebm.train import Trainer


def _correlated(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, d, dtype=dtype)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    return (torch.randn(n, d, generator=g, dtype=dtype) * scales) @ rotation.T + 2.0


@pytest.mark.parametrize("solver", ["svd", "covariance_eigh", "auto"])
@pytest.mark.parametrize("shape", [(500, 6), (20, 8)])
def test_matches_sklearn(solver, shape):
    Y = _correlated(*shape, seed=1)
    ours = PCA(3, solver=solver).fit(Y)
    ref = SkPCA(3, svd_solver="full").fit(Y.numpy())
    np.testing.assert_allclose(ours.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_.numpy(), ref.explained_variance_ratio_, rtol=1e-5
    )
    np.testing.assert_allclose(ours.mean_.numpy(), ref.mean_, rtol=1e-12)
    # the same axes (up to sign): |cos| between matching components is 1
    cos = (ours.components_.numpy() * ref.components_).sum(1)
    np.testing.assert_allclose(np.abs(cos), 1.0, atol=1e-8)

    query = _correlated(50, shape[1], seed=2)
    reconstruction = ref.inverse_transform(ref.transform(query.numpy()))
    expected = ((query.numpy() - reconstruction) ** 2).sum(1)
    np.testing.assert_allclose(ours.energy(query).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        np.abs(ours.transform(query).numpy()), np.abs(ref.transform(query.numpy())), rtol=1e-7
    )


def test_energy_is_zero_on_the_subspace_and_grows_off_it():
    Y = _correlated(300, 5, seed=3)
    pca = PCA(2).fit(Y)
    z = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    on = pca.inverse_transform(z)
    assert torch.allclose(pca.energy(on), torch.zeros(10, dtype=torch.float64), atol=1e-20)
    # moving by t along a discarded axis raises the energy by exactly t²
    normal = torch.linalg.svd(pca.components_).Vh[-1]  # orthogonal to both components
    np.testing.assert_allclose(pca.energy(on + 0.7 * normal).numpy(), 0.49, rtol=1e-10)


def test_float32_query_and_dtype():
    Y = _correlated(200, 4, seed=4, dtype=torch.float32)
    pca = PCA(1).fit(Y)
    assert pca.components_.dtype == torch.float32
    assert pca.energy(Y.double()).shape == (200,)


def test_bad_input():
    with pytest.raises(ValueError, match="n_components"):
        PCA(5).fit(torch.randn(4, 8))  # fewer samples than components
    with pytest.raises(ValueError, match="n_components"):
        PCA(3).fit(torch.randn(50, 2))  # more components than dimensions
    with pytest.raises(ValueError, match="NaN or inf"):
        PCA(1).fit(torch.tensor([[0.0, 1.0], [math.nan, 2.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        PCA(1).fit(torch.tensor([[0.0, 1.0], [math.inf, 2.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="n_components"):
        PCA(0).fit(torch.randn(10, 2))
    with pytest.raises(ValueError, match="solver"):
        PCA(1, solver="qr").fit(torch.randn(10, 2))
    with pytest.raises(NotFittedError, match="not fitted"):
        PCA(1).energy(torch.randn(3, 2))
    pca = PCA(1).fit(torch.randn(10, 2))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        pca.energy(torch.randn(3, 5))


def test_linear_autoencoder_finds_the_principal_subspace():
    Y = _correlated(2000, 5, seed=5, dtype=torch.float32)
    model = LinearAutoencoder(5, 2, lr=3e-2, seed=0)
    Trainer(max_epochs=60, batch_size=250, seed=0, device="cpu").fit(model, Y)
    pca = PCA(2).fit(Y)
    learned = model.components()
    projector_gap = learned.T @ learned - pca.components_.T @ pca.components_
    assert torch.linalg.matrix_norm(projector_gap) < 0.05
    # at the optimum of the tied autoencoder W has orthonormal rows
    W = model.weight.detach()
    assert torch.allclose(W @ W.T, torch.eye(2), atol=0.05)
    gap = model(Y).mean() / pca.energy(Y).mean()
    assert gap < 1.02
