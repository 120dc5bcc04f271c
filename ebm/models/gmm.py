"""Gaussian mixture as an energy: E(y) = −log p(y), p(y) = Σ_k π_k N(y; μ_k, Σ_k) (low = likely).

A normalised density: raising p somewhere must lower it elsewhere, so the volume of low energy is
fixed (notes ch. 20, the first strategy for shaping an energy). Fitted by EM from a k-means start;
every covariance gets ``reg_covar`` added to its diagonal, a floor that keeps a component from
collapsing onto one point. Densities are evaluated through Cholesky factors in float64.

The energy is the free energy (``ebm.inference.free_energy``, the library's convention) at β = 1
of the joint energy E(y, k) = −log π_k − log N(y; μ_k, Σ_k): −log Σ_k exp(−E(y, k)) = −log p(y).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_choice, check_int, check_real, make_generator
from ebm.models._estimator import as_query, check_data, check_fitted, check_positive_int

# A standard deviation (or Cholesky pivot) at most this many float64 epsilons times the data's
# largest |value| along its feature cannot be told from a point mass: the rounding of y − μ is
# as large as the spread itself, and the likelihood of a collapsed component is unbounded.
_COLLAPSE_EPS = 64

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class GaussianMixture:
    """Gaussian mixture model fitted by expectation-maximisation (the best of ``n_init`` runs).

    Parameters
    ----------
    n_components: K >= 1.
    covariance_type: "full" (K, D, D), "tied" (one (D, D) for all), "diag" (K, D) or
        "spherical" (K,) — the shape of ``covariances_``.
    n_init, max_iter: EM runs (each from its own k-means start) and iterations per run (>= 1).
    tol: finite, >= 0: a run stops when the mean log-likelihood gains less than ``tol``.
    reg_covar: the covariance floor, added to every variance (finite, >= 0). With a floor too
        small for the data (0, typically), a component that collapses onto too few points (a
        variance at the rounding level of the data) makes ``fit`` raise a ValueError, for every
        covariance_type, rather than return a degenerate or NaN model.
    seed: seeds a private generator for the k-means starts and ``sample`` (None = fresh).
    Every parameter is validated by ``fit``, before any work, with errors that name it.

    Data (``fit``) and queries (``predict``, ``energy``, ...) are tensors or array-likes; they must
    be finite (NaN/inf raise a ValueError naming ``Y``), integers are promoted.

    Fitted attributes
    -----------------
    weights_ (K,), means_ (K, D), covariances_ (see above), converged_, n_iter_,
    lower_bound_ (the mean log-likelihood of the kept run). All float64, on the data's device.
    """

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        seed: int | None = None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.seed = seed

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor) -> GaussianMixture:
        """Y: (N, D) finite, N >= n_components. Returns self."""
        from ebm.models.kmeans import KMeans

        k = check_positive_int("n_components", self.n_components)
        check_choice("covariance_type", self.covariance_type, _COVARIANCE_TYPES)
        runs = check_positive_int("n_init", self.n_init)
        max_iter = check_positive_int("max_iter", self.max_iter)
        tol = float(check_real("tol", self.tol, 0.0))
        check_real("reg_covar", self.reg_covar, 0.0)
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
        Y = check_data("Y", Y, min_samples=max(2, k), what=f"n_components={k}")
        X = Y.to(torch.float64)
        peak = float(X.abs().max())
        if not math.isfinite(peak * peak * X.shape[0] * X.shape[1]):
            raise ValueError(
                f"Y's values are too large for float64 densities (largest |value| {peak:.3g}: "
                f"its squared distances overflow): rescale Y"
            )
        self._generator = make_generator(self.seed, X.device)
        self._resolution = _COLLAPSE_EPS * torch.finfo(X.dtype).eps * X.abs().amax(0)  # (D,)

        best = None
        for _ in range(runs):
            start_seed = int(
                torch.randint(2**31 - 1, (1,), generator=self._generator, device=X.device)
            )
            labels = KMeans(k, n_init=1, seed=start_seed).fit(X).labels_
            resp = torch.nn.functional.one_hot(labels, k).to(X.dtype)  # (N, K)
            params = self._m_step(X, resp)
            bound, converged, n_iter = -math.inf, False, 0
            for n_iter in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
                log_resp, new_bound = _e_step(X, params, self.covariance_type)
                params = self._m_step(X, log_resp.exp())
                # one host read per EM iteration: EM needs the likelihood gain to decide to stop,
                # and an iteration is several full passes over the data, so the read is noise
                new_bound = float(new_bound)
                if not math.isfinite(new_bound):
                    raise ValueError(
                        f"the log-likelihood of Y is not finite ({new_bound}): Y's values (largest "
                        f"|value| {float(X.abs().max()):.3g}) are beyond what float64 densities "
                        f"can represent; rescale Y"
                    )
                if abs(new_bound - bound) < tol:
                    converged = True
                    bound = new_bound
                    break
                bound = new_bound
            if best is None or bound > best[0]:
                best = (bound, params, converged, n_iter)

        bound, params, converged, n_iter = best
        self.weights_, self.means_, self.covariances_, self._cholesky = params
        self.lower_bound_, self.converged_, self.n_iter_ = bound, converged, n_iter
        self.n_features_in_ = Y.shape[1]
        return self

    def _m_step(self, X: Tensor, resp: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Weights (K,), means (K, D), covariances and their Cholesky factors from the
        responsibilities resp (N, K). Second moments are taken about each component's mean (two
        passes), so a collapsed component shows a variance near 0, not the cancellation noise of
        E[y²] − E[y]²."""
        n, d = X.shape
        nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps  # (K,): no empty component divides by 0
        means = resp.T @ X / nk[:, None]  # (K, D)
        reg = float(self.reg_covar)
        kind = self.covariance_type
        eye = torch.eye(d, dtype=X.dtype, device=X.device)
        if kind in ("full", "tied"):
            scatter = torch.stack(
                [((resp[:, j, None] * (X - means[j])).T @ (X - means[j])) for j in range(len(nk))]
            )  # (K, D, D)
            if kind == "full":
                covariances = scatter / nk[:, None, None] + reg * eye
            else:
                covariances = scatter.sum(0) / nk.sum() + reg * eye
        else:
            variances = (
                torch.stack(
                    [(resp[:, j, None] * (X - means[j]).square()).sum(0) for j in range(len(nk))]
                )
                / nk[:, None]
                + reg
            )  # (K, D)
            covariances = variances if kind == "diag" else variances.mean(1)
        factor = _cholesky(covariances, kind)
        self._check_collapse(factor, kind)
        return nk / n, means, covariances, factor

    def _check_collapse(self, factor: Tensor, kind: str) -> None:
        """Raise if a standard deviation (a Cholesky pivot: the spread of a feature given the
        previous ones) is within rounding of zero at the data's magnitude."""
        if kind in ("full", "tied"):
            spread = factor.diagonal(dim1=-2, dim2=-1).reshape(-1, factor.shape[-1])  # (K|1, D)
            floor = self._resolution
        elif kind == "diag":
            spread, floor = factor, self._resolution
        else:
            spread, floor = factor[:, None], self._resolution.amax()
        collapsed = ~(spread > floor)  # NaN counts as collapsed
        if bool(collapsed.any()):
            where = collapsed.nonzero()[0].tolist()
            component = f"component {where[0]}" if kind != "tied" else "the tied covariance"
            along = "" if kind == "spherical" else f" along feature {where[-1]}"
            raise ValueError(
                f"{component} collapsed: its standard deviation{along} is "
                f"{float(spread[tuple(where)]):.3g}, within rounding of 0 for Y's values (a "
                f"component on too few distinct points has an unbounded likelihood); use "
                f"reg_covar > 0 (got {self.reg_covar!r}; 1e-6 is the default) or fewer "
                f"n_components"
            )

    # ---- the fitted density -----------------------------------------------------------------

    def _log_joint(self, Y: Tensor) -> Tensor:
        """log π_k + log N(y; μ_k, Σ_k), (B, D) -> (B, K) float64."""
        means = check_fitted(self, "means_")
        X = as_query("Y", Y, means)
        params = (self.weights_, means, self.covariances_, self._cholesky)
        return _weighted_log_prob(X, params, self.covariance_type)

    def score_samples(self, Y: Tensor) -> Tensor:
        """log p(y), (B, D) -> (B,) in Y's floating dtype (float64 for other inputs)."""
        out_dtype = Y.dtype if torch.is_tensor(Y) and Y.is_floating_point() else torch.float64
        return torch.logsumexp(self._log_joint(Y), dim=1).to(out_dtype)

    def energy(self, Y: Tensor) -> Tensor:
        """E(y) = −log p(y), (B, D) -> (B,)."""
        return -self.score_samples(Y)

    def __call__(self, Y: Tensor) -> Tensor:
        return self.energy(Y)

    def score(self, Y: Tensor) -> float:
        """Mean log-likelihood of the batch (higher is better). Y: (B, D) with B >= 1."""
        log_p = self.score_samples(Y)
        if log_p.numel() == 0:
            raise ValueError("Y must hold at least one sample to score, got shape (0, D)")
        return float(log_p.double().mean())

    def predict_proba(self, Y: Tensor) -> Tensor:
        """Responsibilities p(k | y), (B, D) -> (B, K)."""
        return torch.softmax(self._decided_log_joint(Y), dim=1)

    def predict(self, Y: Tensor) -> Tensor:
        """Most responsible component, (B, D) -> (B,) int64."""
        return self._decided_log_joint(Y).argmax(1)

    def _decided_log_joint(self, Y: Tensor) -> Tensor:
        """_log_joint, refusing rows where every component's density underflows to 0 (a query
        so far away that float64 cannot rank the components): no label rather than label 0."""
        log_joint = self._log_joint(Y)
        lost = ~(log_joint.amax(1) > -math.inf)
        if bool(lost.any()):
            rows = lost.nonzero().squeeze(1).tolist()
            raise ValueError(
                f"Y rows {rows[:10]}{' ...' if len(rows) > 10 else ''} are so far from every "
                f"component that their float64 densities are all 0: no component can be chosen"
            )
        return log_joint

    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """n draws from the fitted mixture, (n, D) float64. ``seed`` None continues the model's
        private generator."""
        means = check_fitted(self, "means_")
        n = check_positive_int("n", n)
        if seed is not None:
            check_int("seed", seed, minimum=0)
        generator = self._generator if seed is None else make_generator(seed, means.device)
        k, d = means.shape
        components = torch.multinomial(self.weights_, n, replacement=True, generator=generator)
        noise = torch.randn(n, d, generator=generator, dtype=means.dtype, device=means.device)
        L = _full_factors(self._cholesky, self.covariance_type, k, d)  # (K, D, D)
        return means[components] + (L[components] @ noise[:, :, None]).squeeze(-1)

    def __repr__(self) -> str:
        return (
            f"GaussianMixture(n_components={self.n_components!r}, "
            f"covariance_type={self.covariance_type!r}, n_init={self.n_init!r}, "
            f"max_iter={self.max_iter!r}, tol={self.tol!r}, reg_covar={self.reg_covar!r}, "
            f"seed={self.seed!r})"
        )


# ---- the functional core ---------------------------------------------------------------------


def _cholesky(covariances: Tensor, kind: str) -> Tensor:
    """Lower Cholesky factors ("full", "tied") or standard deviations ("diag", "spherical")."""
    if kind in ("diag", "spherical"):
        return covariances.sqrt()
    L, info = torch.linalg.cholesky_ex(covariances)
    if bool((info != 0).any()):
        raise ValueError(
            "a covariance matrix is not positive definite (a component collapsed onto too few "
            "points): use reg_covar > 0 (1e-6 is the default), increase it, or decrease "
            "n_components"
        )
    return L


def _full_factors(factor: Tensor, kind: str, k: int, d: int) -> Tensor:
    """Every component's Cholesky factor as a (K, D, D) matrix."""
    eye = torch.eye(d, dtype=factor.dtype, device=factor.device)
    if kind == "full":
        return factor
    if kind == "tied":
        return factor.expand(k, d, d)
    if kind == "diag":
        return torch.diag_embed(factor)
    return factor[:, None, None] * eye


def _weighted_log_prob(X: Tensor, params: tuple, kind: str) -> Tensor:
    """log π_k + log N(x; μ_k, Σ_k) for every point and component: X (N, D) -> (N, K)."""
    weights, means, _, factor = params
    n, d = X.shape
    if kind in ("full", "tied"):
        columns = []
        for j in range(means.shape[0]):
            L = factor[j] if kind == "full" else factor
            # z = L⁻¹(x − μ): the Mahalanobis distance is ‖z‖², log det Σ = 2 Σ log diag L
            z = torch.linalg.solve_triangular(L, (X - means[j]).T, upper=False)  # (D, N)
            columns.append(-0.5 * z.square().sum(0) - L.diagonal().log().sum())
        log_det_and_maha = torch.stack(columns, dim=1)  # (N, K)
    else:
        inv_var = factor.square().reciprocal()  # (K, D) or (K,)
        if kind == "spherical":
            inv_var = inv_var[:, None].expand(-1, d)
        maha = (
            X.square() @ inv_var.T - 2 * X @ (means * inv_var).T + (means.square() * inv_var).sum(1)
        )
        log_det_and_maha = -0.5 * maha + 0.5 * inv_var.log().sum(1)
    return log_det_and_maha - 0.5 * d * math.log(2 * math.pi) + weights.log()


def _e_step(X: Tensor, params: tuple, kind: str) -> tuple[Tensor, Tensor]:
    """Log responsibilities (N, K) and the mean log-likelihood (a 0-d tensor)."""
    log_prob = _weighted_log_prob(X, params, kind)
    log_norm = torch.logsumexp(log_prob, dim=1, keepdim=True)
    return log_prob - log_norm, log_norm.mean()
