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

import math

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
from ebm.models._batch import batch_data
from ebm.models._estimator import (
    ParamsMixin,
    as_query,
    check_data,
    check_fitted,
    check_positive_int,
    power_of_two_scale,
)

__all__ = ["PCA", "LinearAutoencoder"]

_SOLVERS = ("auto", "svd", "covariance_eigh")


class PCA(ParamsMixin):
    """Principal component analysis, fitted on the input's device.

    Parameters
    ----------
    n_components: k >= 1, the dimension of the principal subspace (k <= D).
    solver: "svd" (thin SVD of the centred data, the most accurate), "covariance_eigh"
        (eigendecomposition of the D×D covariance: one pass over the data, much faster when
        N ≫ D, with the rounding of a squared condition number) or "auto" (covariance_eigh when
        N ≥ 10·D and D ≤ 1000, else svd; the same rule as scikit-learn).
    whiten: a bool. True: ``transform`` divides each code by the square root of its explained
        variance, so the codes of the training data have unit (N − 1) variance, and
        ``inverse_transform`` multiplies it back (scikit-learn's definition). It changes
        neither ``components_`` nor the energy nor the probabilistic model.
    ``__init__`` only stores them: ``fit`` validates every parameter, before any work, with
    errors that name it. ``get_params``/``set_params`` make ``sklearn.base.clone`` work.

    Fitted attributes
    -----------------
    mean_ (D,), components_ (k, D) orthonormal rows sorted by decreasing variance,
    explained_variance_ (k,) (unbiased, divides by N − 1), explained_variance_ratio_ (k,),
    singular_values_ (k,), noise_variance_ (mean of the discarded variances, the σ² of
    probabilistic PCA), n_components_ (k), n_features_in_ (D), n_samples_.
    Signs follow scikit-learn: the largest-magnitude entry of each component is positive.

    Probabilistic PCA (Tipping & Bishop): y ~ N(μ, Σ) with Σ = Wᵀ diag(λ − σ²) W + σ² I (λ the
    explained variances, σ² = noise_variance_): ``get_covariance``, ``get_precision``,
    ``score_samples`` and ``score`` use it, with scikit-learn's formulas.

    Data (``fit``) and queries (tensors or array-likes: numpy arrays, nested lists) must be
    finite; integers and bools are promoted to the default float dtype. What comes back is a
    torch tensor in the fitted dtype (the data's floating dtype), on the fitted device.
    The decomposition runs on the data divided by a power of two near their largest magnitude
    (exact), so neither 1e30 nor 1e-30 data over- or underflow in it; data whose variances are
    beyond the dtype's range (float32 at 1e20) or zero (all rows equal: the subspace and
    explained_variance_ratio_ are undefined) raise a ValueError.
    """

    def __init__(self, n_components: int, solver: str = "auto", whiten: bool = False):
        self.n_components = n_components
        self.solver = solver
        self.whiten = whiten

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor, y: object = None) -> PCA:
        """Y: (N, D) with N >= max(2, n_components) and n_components <= D; y: ignored
        (scikit-learn's pipelines pass their targets here). Returns self."""
        k = check_positive_int("n_components", self.n_components)
        check_choice("solver", self.solver, _SOLVERS)
        check_choice("whiten", self.whiten, (False, True))
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
        self.n_components_ = k
        self.n_features_in_ = d
        return self

    def fit_transform(self, Y: Tensor, y: object = None) -> Tensor:
        """Fit, then ``transform(Y)``: Y (N, D) -> codes (N, k). y: ignored."""
        return self.fit(Y).transform(Y)

    # ---- using the fitted subspace ----------------------------------------------------------

    def transform(self, Y: Tensor) -> Tensor:
        """Codes z = W(y − μ), divided by √explained_variance_ if ``whiten``.

        Y: (B, D) finite queries (tensor or array-like). Returns (B, k) in the fitted dtype.
        """
        W = check_fitted(self, "components_")
        Y = as_query("Y", Y, W)
        Z = (Y - self.mean_) @ W.T
        return Z / self._whitening_scale() if self.whiten else Z

    def inverse_transform(self, Z: Tensor) -> Tensor:
        """Points on the subspace μ + Wᵀz (z multiplied by √explained_variance_ first if
        ``whiten``). Z: (B, k), finite (tensor or array-like) -> (B, D)."""
        W = check_fitted(self, "components_")
        Z = as_float_tensor("Z", Z, ndim=2, finite=False)
        if Z.shape[1] != W.shape[0]:
            raise ValueError(
                f"Z must have shape (B, {W.shape[0]}) (n_components codes), got {tuple(Z.shape)}"
            )
        Z = as_query("Z", Z, W.T)
        if self.whiten:
            Z = Z * self._whitening_scale()
        return Z @ W + self.mean_

    def _whitening_scale(self) -> Tensor:
        """√explained_variance_ (k,), floored at the dtype's eps as in scikit-learn (a zero
        variance would divide by zero)."""
        scale = self.explained_variance_.sqrt()
        return scale.clamp(min=torch.finfo(scale.dtype).eps)

    # ---- probabilistic PCA ------------------------------------------------------------------

    def _ppca_variances(self) -> tuple[Tensor, Tensor]:
        """(λ' (k,), σ²): the explained variances floored at σ² (scikit-learn's clamp of
        λ − σ² at 0) and the noise variance, refusing a singular model."""
        W = check_fitted(self, "components_")
        noise = self.noise_variance_
        variances = torch.maximum(self.explained_variance_, noise)
        singular = (W.shape[0] < W.shape[1] and not bool(noise > 0)) or not bool(
            (variances > 0).all()
        )
        if singular:
            raise ValueError(
                f"the probabilistic PCA covariance is singular: noise_variance_ is "
                f"{float(noise):.3g} and the smallest explained variance "
                f"{float(self.explained_variance_.min()):.3g} (the data lie in a subspace of "
                f"dimension <= n_components, or N <= n_components): its precision and "
                f"log-likelihood are undefined; use fewer n_components"
            )
        return variances, noise

    def get_covariance(self) -> Tensor:
        """The data covariance of probabilistic PCA, (D, D):
        Σ = Wᵀ diag(max(λ − σ², 0)) W + σ² I, λ = explained_variance_, σ² = noise_variance_
        (scikit-learn's formula; unlike scikit-learn with whiten=True, whitening does not change
        it, since it is a model of the data, not of the codes)."""
        W = check_fitted(self, "components_")
        noise = self.noise_variance_
        excess = (self.explained_variance_ - noise).clamp(min=0)  # (k,)
        cov = (W.T * excess) @ W
        return cov + noise * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)

    def get_precision(self) -> Tensor:
        """The inverse of ``get_covariance()``, (D, D), in closed form (W has orthonormal rows):
        Σ⁻¹ = Wᵀ diag(1/λ' − 1/σ²) W + I/σ², λ' = max(λ, σ²); with k = D, Wᵀ diag(1/λ) W.
        A singular model (σ² = 0 with k < D, or a zero variance) raises a ValueError."""
        W = check_fitted(self, "components_")
        variances, noise = self._ppca_variances()
        k, d = W.shape
        if k == d:
            return (W.T / variances) @ W
        eye = torch.eye(d, dtype=W.dtype, device=W.device)
        return (W.T * (variances.reciprocal() - noise.reciprocal())) @ W + eye / noise

    def score_samples(self, Y: Tensor) -> Tensor:
        """log N(y; μ, Σ) under probabilistic PCA (Σ = ``get_covariance()``): (B, D) -> (B,), in
        the fitted dtype. Computed through the subspace: (y − μ)ᵀΣ⁻¹(y − μ) = Σ_j z_j²/λ'_j +
        E(y)/σ², with z the (unwhitened) codes and E(y) the energy. Y must be finite."""
        W = check_fitted(self, "components_")
        variances, noise = self._ppca_variances()
        X = as_query("Y", Y, W) - self.mean_
        Z = X @ W.T  # (B, k)
        k, d = W.shape
        maha = (Z.square() / variances).sum(1)
        log_det = variances.log().sum()  # log det Σ
        if k < d:
            residual = (X - Z @ W).square().sum(1)
            maha = maha + residual / noise
            log_det = log_det + (d - k) * noise.log()
        return -0.5 * (maha + log_det + d * math.log(2 * math.pi))

    def score(self, Y: Tensor, y: object = None) -> float:
        """The mean of ``score_samples(Y)`` (a Python float, higher is better). Y: (B, D) with
        B >= 1, finite; y: ignored."""
        return float(self.score_samples(Y).double().mean())

    def energy(self, Y: Tensor) -> Tensor:
        """E(y) = ‖(y − μ) − WᵀW(y − μ)‖². Y: (B, D) finite queries -> (B,). Zero on the subspace."""
        W = check_fitted(self, "components_")
        X = as_query("Y", Y, W) - self.mean_
        residual = X - (X @ W.T) @ W  # (B, D)
        return residual.square().sum(1)

    def __call__(self, Y: Tensor) -> Tensor:
        """``energy(Y)``: the estimator used as an energy function, Y (B, D) -> (B,)."""
        return self.energy(Y)


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
        """E(y) = ‖y − G(y)‖²: y (B, D) -> (B,), low on the learned subspace.

        x: unused (an unconditional energy; the argument keeps the ``Energy`` signature).
        """
        y = self._input(y)
        return (y - self.reconstruct(y)).square().sum(1)

    energy = forward

    def components(self) -> Tensor:
        """An orthonormal basis (k, D) of the learned subspace rowspan(W)."""
        q, _ = torch.linalg.qr(self.weight.detach().T)  # (D, k)
        return q.T

    # ---- the shared Trainer's hooks ---------------------------------------------------------

    def training_step(self, batch) -> dict:
        """Trainer hook: batch is y (B, D) or (y,); returns {"loss": mean E(y)}."""
        y = batch_data(batch)
        loss = self(y).mean()
        return {"loss": loss}

    def validation_step(self, batch) -> dict:
        """Trainer hook: batch is y (B, D) or (y,); returns {"loss": mean E(y)}."""
        y = batch_data(batch)
        return {"loss": self(y).mean()}

    def configure_optimizers(self):
        """Trainer hook: Adam over W and b at the learning rate ``lr``."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)
