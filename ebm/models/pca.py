"""PCA as an energy: E(y) = ‖(y − μ) − WᵀW(y − μ)‖², the squared distance from y to the principal
affine subspace (low = on the subspace).

W (k, D) has orthonormal rows (the notes' eq. 20.4 needs this: ERRATA). Only a k-dimensional
subspace has zero energy, so the volume of low energy is limited, which is what keeps the energy
from going flat (notes ch. 20, fig. 20.4).

Two ways to get W: ``PCA`` in closed form (an SVD or an eigendecomposition of the covariance), and
``LinearAutoencoder``, a tied-weight linear autoencoder trained by gradient through the shared
``Trainer`` whose minimisers span the same subspace.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_module_input,
    check_choice,
    check_int,
    check_positive,
    make_generator,
)
from ebm.energies import Energy
from ebm.models._estimator import (
    as_query,
    check_data,
    check_fitted,
    check_positive_int,
    power_of_two_scale,
)

_SOLVERS = ("auto", "svd", "covariance_eigh")


class PCA:
    """Principal component analysis, fitted on the input's device.

    Parameters
    ----------
    n_components: k, the dimension of the principal subspace.
    solver: "svd" (thin SVD of the centred data, the most accurate), "covariance_eigh"
        (eigendecomposition of the D×D covariance: one pass over the data, much faster when
        N ≫ D, with the rounding of a squared condition number) or "auto" (covariance_eigh when
        N ≥ 10·D and D ≤ 1000, else svd; the same rule as scikit-learn).

    Fitted attributes
    -----------------
    mean_ (D,), components_ (k, D) orthonormal rows sorted by decreasing variance,
    explained_variance_ (k,) (unbiased, divides by N − 1), explained_variance_ratio_ (k,),
    singular_values_ (k,), noise_variance_ (mean of the discarded variances), n_samples_.
    Signs follow scikit-learn: the largest-magnitude entry of each component is positive.

    Data (``fit``) and queries (tensors or array-likes) must be finite; integers are promoted.
    The decomposition runs on the data divided by a power of two near their largest magnitude
    (exact), so neither 1e30 nor 1e-30 data over- or underflow in it; data whose variances are
    beyond the dtype's range (float32 at 1e20) or zero (all rows equal: the subspace and
    explained_variance_ratio_ are undefined) raise a ValueError.
    """

    def __init__(self, n_components: int, solver: str = "auto"):
        self.n_components = n_components
        self.solver = solver

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor) -> PCA:
        """Y: (N, D) with N >= max(2, n_components) and n_components <= D. Returns self."""
        k = check_positive_int("n_components", self.n_components)
        check_choice("solver", self.solver, _SOLVERS)
        Y = check_data("Y", Y, min_samples=max(2, k), what=f"n_components={k}")
        n, d = Y.shape
        if k > d:
            raise ValueError(f"n_components must be <= D = {d} (the data dimension), got {k}")
        solver = self.solver
        if solver == "auto":
            solver = "covariance_eigh" if n >= 10 * d and d <= 1000 else "svd"

        scale = power_of_two_scale(Y)
        Z = Y / scale  # exact: a power of two
        mean = Z.mean(0)
        X = Z - mean  # (N, D)
        if solver == "svd":
            _, s, Vh = torch.linalg.svd(X, full_matrices=False)  # s (r,), Vh (r, D), r = min(N, D)
            variances = s.square() / (n - 1)
        else:
            cov = X.T @ X / (n - 1)  # (D, D)
            eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
            variances = eigenvalues.flip(0).clamp_min(0)
            Vh = eigenvectors.flip(1).T
            s = (variances * (n - 1)).sqrt()
        Vh = _flip_signs(Vh)
        if not variances.sum() > 0:
            raise ValueError(
                "Y has zero variance (all rows are equal): the principal subspace and "
                "explained_variance_ratio_ are undefined"
            )
        ratios = variances / variances.sum()
        variances = variances * scale * scale  # two exact steps: scale² may not be representable
        s = s * scale
        if not torch.isfinite(variances).all():
            raise ValueError(
                f"the variances of Y overflow {Y.dtype} (largest |value| "
                f"{float(Y.abs().max()):.3g}): pass Y in float64 or rescale it"
            )

        total = variances.sum()
        self.mean_ = mean * scale
        self.components_ = Vh[:k].contiguous()
        self.explained_variance_ = variances[:k]
        self.explained_variance_ratio_ = ratios[:k]
        self.singular_values_ = s[:k]
        discarded = min(n, d) - k
        self.noise_variance_ = (
            (total - variances[:k].sum()) / discarded if discarded > 0 else torch.zeros_like(total)
        )
        self.n_samples_ = n
        return self

    # ---- using the fitted subspace ----------------------------------------------------------

    def transform(self, Y: Tensor) -> Tensor:
        """Codes z = W(y − μ). Y: (B, D) -> (B, k)."""
        W = check_fitted(self, "components_")
        Y = as_query("Y", Y, W)
        return (Y - self.mean_) @ W.T

    def inverse_transform(self, Z: Tensor) -> Tensor:
        """Points on the subspace μ + Wᵀz. Z: (B, k), finite (tensor or array-like) -> (B, D)."""
        W = check_fitted(self, "components_")
        Z = as_float_tensor("Z", Z, ndim=2, finite=False)
        if Z.shape[1] != W.shape[0]:
            raise ValueError(
                f"Z must have shape (B, {W.shape[0]}) (n_components codes), got {tuple(Z.shape)}"
            )
        return as_query("Z", Z, W.T) @ W + self.mean_

    def energy(self, Y: Tensor) -> Tensor:
        """E(y) = ‖(y − μ) − WᵀW(y − μ)‖², shape (B,). Zero on the principal subspace."""
        W = check_fitted(self, "components_")
        X = as_query("Y", Y, W) - self.mean_
        residual = X - (X @ W.T) @ W  # (B, D)
        return residual.square().sum(1)

    def __call__(self, Y: Tensor) -> Tensor:
        return self.energy(Y)

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components!r}, solver={self.solver!r})"


def _flip_signs(Vh: Tensor) -> Tensor:
    """Make the largest-|·| entry of every row positive: a deterministic sign for each axis."""
    rows = torch.arange(Vh.shape[0], device=Vh.device)
    signs = Vh[rows, Vh.abs().argmax(1)].sign()
    return Vh * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]


class LinearAutoencoder(Energy):
    """Tied-weight linear autoencoder G(y) = b + WᵀW(y − b), energy E(y) = ‖y − G(y)‖² (B,).

    W: (k, D). Trained by gradient (``training_step`` minimises the mean energy), its minimisers
    have WWᵀ = I and rowspan(W) = the top-k principal subspace (Baldi & Hornik 1989), so it ends
    where ``PCA`` starts; ``components()`` returns an orthonormal basis of what it learned.

    dim: D; n_components: k; lr: Adam learning rate; seed: for the initial W (None = fresh).
    Inputs (tensors or array-likes) are cast to the parameters' dtype, integers promoted; no
    value checks (forward passes propagate NaN).
    """

    def __init__(self, dim: int, n_components: int, lr: float = 1e-2, seed: int | None = None):
        super().__init__()
        dim = check_int("dim", dim)
        n_components = check_int("n_components", n_components)
        if n_components > dim:
            raise ValueError(f"n_components must be <= dim = {dim}, got {n_components}")
        self.dim, self.n_components = dim, n_components
        self.lr = check_positive("lr", lr)
        init = torch.randn(n_components, dim, generator=make_generator(seed)) / dim**0.5
        self.weight = nn.Parameter(init)  # (k, D)
        self.bias = nn.Parameter(torch.zeros(dim))  # (D,): the learned centre

    def encode(self, y: Tensor) -> Tensor:
        """z = W(y − b): (B, D) -> (B, k)."""
        y = self._input(y)
        return (y - self.bias) @ self.weight.T

    def reconstruct(self, y: Tensor) -> Tensor:
        """G(y) = b + WᵀW(y − b): (B, D) -> (B, D)."""
        return self.encode(y) @ self.weight + self.bias

    def _input(self, y: Tensor) -> Tensor:
        y = as_module_input("y", y, self, ndim=2)
        if y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        return y

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """E(y) = ‖y − G(y)‖², (B, D) -> (B,)."""
        y = self._input(y)
        return (y - self.reconstruct(y)).square().sum(1)

    energy = forward

    def components(self) -> Tensor:
        """An orthonormal basis (k, D) of the learned subspace rowspan(W)."""
        q, _ = torch.linalg.qr(self.weight.detach().T)  # (D, k)
        return q.T

    # ---- the shared Trainer's hooks ---------------------------------------------------------

    def training_step(self, batch) -> dict:
        y = batch[0] if isinstance(batch, (list, tuple)) else batch
        loss = self(y).mean()
        return {"loss": loss}

    def validation_step(self, batch) -> dict:
        y = batch[0] if isinstance(batch, (list, tuple)) else batch
        return {"loss": self(y).mean()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
