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


@pytest.mark.parametrize(
    "scale, dtype", [(1e18, torch.float32), (1e-30, torch.float32), (1e150, torch.float64)]
)
def test_any_data_scale_matches_sklearn_on_the_rescaled_data(scale, dtype):
    # float32 data at 1e18: X.T @ X and s² overflow (variances and ratios were NaN or inf); at
    # 1e-30 the squares underflow and the subspace was noise
    Y = _correlated(300, 4, seed=6)
    ref = SkPCA(2, svd_solver="full").fit(Y.numpy())
    for solver in ("svd", "covariance_eigh"):
        pca = PCA(2, solver=solver).fit((Y * scale).to(dtype))
        np.testing.assert_allclose(
            pca.explained_variance_ratio_.double().numpy(), ref.explained_variance_ratio_, rtol=1e-4
        )
        if scale**2 > torch.finfo(dtype).tiny:  # else 1e-60 rounds to 0 in float32, correctly
            np.testing.assert_allclose(
                pca.explained_variance_.double().numpy() / scale**2,
                ref.explained_variance_,
                rtol=1e-4,
            )
        cos = (pca.components_.double().numpy() * ref.components_).sum(1)
        np.testing.assert_allclose(np.abs(cos), 1.0, atol=1e-4)


def test_degenerate_data_raise_instead_of_nan():
    with pytest.raises(ValueError, match="zero variance"):
        PCA(1).fit(torch.ones(10, 3))  # explained_variance_ratio_ was 0/0 = NaN
    with pytest.raises(ValueError, match="variances of Y overflow torch.float32"):
        PCA(1).fit(_correlated(50, 3, seed=7, dtype=torch.float32) * 1e25)


def test_queries_must_be_finite_and_array_likes_are_accepted():
    Y = _correlated(100, 3, seed=8)
    pca = PCA(2).fit(Y)
    for method in (pca.energy, pca.transform):
        for bad in (math.nan, math.inf):
            with pytest.raises(ValueError, match="Y contains NaN or inf"):
                method(torch.tensor([[0.0, 1.0, 2.0], [bad, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="Z contains NaN or inf"):
        pca.inverse_transform(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match=r"Z must have shape \(B, 2\)"):
        pca.inverse_transform(torch.zeros(3, 3))
    # an empty batch is refused by name, as scikit-learn does
    for method, name, width in (
        (pca.energy, "Y", 3),
        (pca.transform, "Y", 3),
        (pca.inverse_transform, "Z", 2),
    ):
        with pytest.raises(ValueError, match=rf"{name} must hold at least one sample: got 0"):
            method(torch.zeros(0, width))
    query = Y[:4]
    torch.testing.assert_close(pca.energy(query.numpy()), pca.energy(query))
    torch.testing.assert_close(pca.transform(query.tolist()), pca.transform(query))
    torch.testing.assert_close(pca.inverse_transform([[1, 2]]), pca.inverse_transform([[1.0, 2.0]]))
    # integer data are promoted to float, not refused
    ints = PCA(1).fit(torch.tensor([[0, 0], [2, 2], [4, 4]]))
    torch.testing.assert_close(ints.explained_variance_, torch.tensor([8.0]))
    for bad in (True, 1.5, "2"):
        with pytest.raises(ValueError, match="n_components must be an int"):
            PCA(bad).fit(Y)


def test_linear_autoencoder_inputs_and_arguments():
    model = LinearAutoencoder(3, 2, seed=0)  # float32
    y = torch.tensor([[1, 2, 3], [0, -1, 2]])
    expected = model(y.float())
    for given in (y, y.double(), y.numpy(), y.tolist()):
        out = model(given)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected)
    for kwargs, name in (
        ({"dim": 0}, "dim"),
        ({"dim": 3.0}, "dim"),
        ({"n_components": 4}, "n_comp"),
    ):
        with pytest.raises(ValueError, match=name):
            LinearAutoencoder(**{"dim": 3, "n_components": 2, **kwargs})
    with pytest.raises(ValueError, match="lr"):
        LinearAutoencoder(3, 2, lr=math.nan)
