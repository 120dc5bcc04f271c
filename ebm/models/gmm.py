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
import warnings

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_real,
    make_generator,
)
from ebm._deprecation import REMOVED_IN
from ebm.models._estimator import (
    ParamsMixin,
    as_query,
    check_data,
    check_fitted,
    check_positive_int,
)

__all__ = ["GaussianMixture"]

# A standard deviation (or Cholesky pivot) at most this many float64 epsilons times the data's
# largest |value| along its feature cannot be told from a point mass: the rounding of y − μ is
# as large as the spread itself, and the likelihood of a collapsed component is unbounded.
_COLLAPSE_EPS = 64

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class GaussianMixture(ParamsMixin):
    """Gaussian mixture model fitted by expectation-maximisation (the best of ``n_init`` runs).

    Parameters
    ----------
    n_components: K >= 1.
    covariance_type: "full" (K, D, D), "tied" (one (D, D) for all), "diag" (K, D) or
        "spherical" (K,) — the shape of ``covariances_`` and ``precisions_``.
    n_init: EM runs (>= 1), each from its own k-means start.
    max_iter: EM iterations per run at most (>= 1).
    tol: finite, >= 0: a run stops when the mean log-likelihood gains less than ``tol``.
    reg_covar: the covariance floor, added to every variance (finite, >= 0). With a floor too
        small for the data (0, typically), a component that collapses onto too few points (a
        variance at the rounding level of the data) makes ``fit`` raise a ValueError, for every
        covariance_type, rather than return a degenerate or NaN model.
    weights_init: initial mixing weights (K,), in [0, 1] and summing to 1 (None: from the
        k-means start).
    means_init: initial means (K, D), finite (None: from the k-means start).
    precisions_init: initial precision (inverse covariance) matrices in the shape of
        ``covariance_type`` (full (K, D, D), tied (D, D), diag (K, D), spherical (K,)):
        symmetric positive definite matrices, or positive precisions (None: the covariances
        of the k-means start). As in scikit-learn, what is given replaces what the k-means start
        would give for the first E-step; when all three are given no k-means runs and
        ``n_init`` runs would all be the same, so one runs.
    seed: seeds a private generator for the k-means starts and ``sample`` (None = fresh).
    ``__init__`` only stores them: ``fit`` validates every parameter, before any work, with
    errors that name it. ``get_params``/``set_params`` make ``sklearn.base.clone`` work.

    Data (``fit``) and queries (``predict``, ``energy``, ...) are tensors or array-likes (numpy
    arrays, nested lists); they must be finite (NaN/inf raise a ValueError naming ``Y``),
    integers and bools are promoted. What comes back is a torch tensor on the data's device:
    float64 for the fitted parameters, responsibilities and samples, int64 for labels. EM runs
    in float64; the k-means start runs in the data's dtype (float32 or float64, as scikit-learn's).

    Fitted attributes
    -----------------
    weights_ (K,), means_ (K, D), covariances_ (see above), precisions_ (their inverses, same
    shape), precisions_cholesky_ (the factor U with precision = U Uᵀ, upper triangular, as in
    scikit-learn; for "diag"/"spherical" the square roots of the precisions), converged_,
    n_iter_, lower_bound_ (the mean log-likelihood of the kept run), n_features_in_. Tensors
    are float64, on the data's device.
    """

    _estimator_type = "density_estimator"

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        weights_init: Tensor | None = None,
        means_init: Tensor | None = None,
        precisions_init: Tensor | None = None,
        seed: int | None = None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.seed = seed

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor, y: object = None) -> GaussianMixture:
        """Y: (N, D) finite, N >= n_components; y: ignored (scikit-learn's pipelines pass their
        targets here). Returns self."""
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
        weights_init, means_init, covariances_init = self._check_inits(k, X)
        needs_kmeans = weights_init is None or means_init is None or covariances_init is None
        if not needs_kmeans:
            runs = 1  # no k-means start: every run would be the same
        self._generator = make_generator(self.seed, X.device)
        self._resolution = _COLLAPSE_EPS * torch.finfo(X.dtype).eps * X.abs().amax(0)  # (D,)

        kmeans_data = Y if Y.dtype in (torch.float32, torch.float64) else X
        best = None
        for _ in range(runs):
            weights = means = covariances = factor = None
            if needs_kmeans:
                start_seed = int(
                    torch.randint(2**31 - 1, (1,), generator=self._generator, device=X.device)
                )
                # k-means in the data's own dtype, as scikit-learn's start: float32 data get
                # float32 distances (the fast path; half-precision data: float64); only the
                # labels are used
                labels = KMeans(k, n_init=1, seed=start_seed).fit(kmeans_data).labels_
                resp = torch.nn.functional.one_hot(labels, k).to(X.dtype)  # (N, K)
                weights, means, covariances, factor = self._m_step(X, resp)
            # what the user gave replaces what the k-means start gives (scikit-learn's rule)
            weights = weights if weights_init is None else weights_init
            means = means if means_init is None else means_init
            if covariances_init is not None:
                covariances, factor = covariances_init
            params = (weights, means, covariances, factor)
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
        self.precisions_cholesky_ = _precision_factors(self._cholesky, self.covariance_type)
        if self.covariance_type in ("full", "tied"):
            self.precisions_ = self.precisions_cholesky_ @ self.precisions_cholesky_.mT
        else:
            self.precisions_ = self.precisions_cholesky_.square()
        self.n_features_in_ = Y.shape[1]
        return self

    def fit_predict(self, Y: Tensor, y: object = None) -> Tensor:
        """Fit, then the most responsible component of every row under the fitted model:
        Y (N, D) -> (N,) int64 (``fit(Y).predict(Y)``; y is ignored)."""
        return self.fit(Y).predict(Y)

    def _check_inits(self, k: int, X: Tensor) -> tuple:
        """The validated ``weights_init`` (K,), ``means_init`` (K, D) and ``precisions_init``
        as (covariances, their factors), float64 on X's device; None where not given."""
        d, kind = X.shape[1], self.covariance_type
        weights = means = cov = None
        if self.weights_init is not None:
            weights = _init_tensor("weights_init", self.weights_init, (k,), "(n_components,)", X)
            if bool(((weights < 0) | (weights > 1)).any()):
                raise ValueError(
                    f"weights_init must hold weights in [0, 1], got {weights.tolist()[:10]}"
                )
            total = float(weights.sum())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"weights_init must sum to 1, got sum {total!r}")
            weights = weights / total
        if self.means_init is not None:
            means = _init_tensor("means_init", self.means_init, (k, d), "(n_components, D)", X)
        if self.precisions_init is not None:
            shape, text = {
                "full": ((k, d, d), "(n_components, D, D)"),
                "tied": ((d, d), "(D, D)"),
                "diag": ((k, d), "(n_components, D)"),
                "spherical": ((k,), "(n_components,)"),
            }[kind]
            precisions = _init_tensor("precisions_init", self.precisions_init, shape, text, X)
            cov = _covariances_from_precisions(precisions, kind)
        return weights, means, cov

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
                [_weighted_scatter(X - means[j], resp[:, j]) for j in range(len(nk))]
            )  # (K, D, D)
            if kind == "full":
                covariances = scatter / nk[:, None, None] + reg * eye
            else:
                covariances = scatter.sum(0) / nk.sum() + reg * eye
        else:
            variances = _weighted_square_deviations(X, resp, means) / nk[:, None] + reg  # (K, D)
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
        """E(y) = −log p(y) (low = likely). Y: (B, D) finite queries -> (B,)."""
        return -self.score_samples(Y)

    def __call__(self, Y: Tensor) -> Tensor:
        """``energy(Y)``: the estimator used as an energy function, Y (B, D) -> (B,)."""
        return self.energy(Y)

    def score(self, Y: Tensor, y: object = None) -> float:
        """Mean log-likelihood of the batch (higher is better), a Python float. Y: (B, D) with
        B >= 1, finite; y: ignored."""
        log_p = self.score_samples(Y)
        if log_p.numel() == 0:
            raise ValueError("Y must hold at least one sample to score, got shape (0, D)")
        return float(log_p.double().mean())

    def predict_proba(self, Y: Tensor) -> Tensor:
        """Responsibilities p(k | y). Y: (B, D) finite queries -> (B, K), rows sum to 1."""
        return torch.softmax(self._decided_log_joint(Y), dim=1)

    def predict(self, Y: Tensor) -> Tensor:
        """Most responsible component. Y: (B, D) finite queries -> (B,) int64."""
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

    def sample(
        self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None
    ) -> Tensor:
        """n draws from the fitted mixture: (n, D) float64, on the fitted device.

        n: an int >= 1. generator: a torch.Generator on the fitted device (None: the model's
        private generator, seeded by ``seed`` in the constructor, which each call advances).
        seed: deprecated (a DeprecationWarning; removed in 0.3), use
        ``generator=torch.Generator().manual_seed(seed)``.
        """
        means = check_fitted(self, "means_")
        n = check_positive_int("n", n)
        check_generator("generator", generator, means.device)  # on the fitted device
        if seed is not None:
            check_int("seed", seed, minimum=0)
            if generator is not None:
                raise ValueError("give generator or the deprecated seed, not both")
            warnings.warn(
                f"GaussianMixture.sample(): argument 'seed' is deprecated and will be removed in "
                f"{REMOVED_IN}; use 'generator' (torch.Generator(device).manual_seed(seed))",
                DeprecationWarning,
                stacklevel=2,
            )
            generator = make_generator(seed, means.device)
        elif generator is None:
            generator = self._generator
        k, d = means.shape
        components = torch.multinomial(self.weights_, n, replacement=True, generator=generator)
        noise = torch.randn(n, d, generator=generator, dtype=means.dtype, device=means.device)
        L = _full_factors(self._cholesky, self.covariance_type, k, d)  # (K, D, D)
        return means[components] + (L[components] @ noise[:, :, None]).squeeze(-1)

    def _n_parameters(self) -> int:
        """The number of free parameters of the fitted model (scikit-learn's count)."""
        k, d = check_fitted(self, "means_").shape
        cov_params = {
            "full": k * d * (d + 1) // 2,
            "tied": d * (d + 1) // 2,
            "diag": k * d,
            "spherical": k,
        }[self.covariance_type]
        return cov_params + k * d + k - 1

    def bic(self, Y: Tensor) -> float:
        """Bayesian information criterion on Y (B, D): −2 Σ_b log p(y_b) + P log B, P the number
        of free parameters (scikit-learn's count). Lower is better; a Python float."""
        log_p = self.score_samples(Y).double()
        return float(-2 * log_p.sum() + self._n_parameters() * math.log(log_p.shape[0]))

    def aic(self, Y: Tensor) -> float:
        """Akaike information criterion on Y (B, D): −2 Σ_b log p(y_b) + 2P, P the number of free
        parameters (scikit-learn's count). Lower is better; a Python float."""
        log_p = self.score_samples(Y).double()
        return float(-2 * log_p.sum() + 2 * self._n_parameters())


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


# rows per chunk of the diagonal M-step: one (chunk, K, D) block of about this many numbers
# (1 MiB in float64) stays in the CPU's cache between its subtraction, square and product
_DEVIATION_BLOCK = 1 << 17


def _weighted_square_deviations(X: Tensor, resp: Tensor, means: Tensor) -> Tensor:
    """Σ_n r_nk (x_nd − μ_kd)²: X (N, D), resp (N, K), means (K, D) -> (K, D).

    Two-pass (about each component's mean, so a collapsed component shows a variance near 0),
    over row chunks whose (chunk, K, D) deviations stay in cache: about four times faster on a
    CPU than one pass over the whole data per component, which is bound by memory traffic."""
    k, d = means.shape
    rows = max(1, _DEVIATION_BLOCK // (k * d))
    total = X.new_zeros(k, d)
    for x, r in zip(X.split(rows), resp.split(rows)):
        deviations = (x[:, None, :] - means).square_()  # (c, K, D)
        total += torch.einsum("ck,ckd->kd", r, deviations)
    return total


def _weighted_scatter(centred: Tensor, weights: Tensor) -> Tensor:
    """Σ_n w_n c_n c_nᵀ: centred (N, D), weights (N,) -> (D, D)."""
    return (weights[:, None] * centred).T @ centred


def _init_tensor(name: str, value: object, shape: tuple, text: str, X: Tensor) -> Tensor:
    """A user's initial parameter as a finite float64 tensor of ``shape`` on X's device."""
    t = as_float_tensor(name, value, finite=True)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {text} = {shape}, got {tuple(t.shape)}")
    return t.to(device=X.device, dtype=X.dtype)


def _covariances_from_precisions(precisions: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """Covariances (the inverses of ``precisions_init``) and their factors, refusing precisions
    that are not symmetric positive definite (or, for diag/spherical, not positive)."""
    if kind in ("diag", "spherical"):
        if not bool((precisions > 0).all()):
            raise ValueError(
                f"precisions_init must be positive for covariance_type={kind!r}, got "
                f"min {float(precisions.min()):.3g}"
            )
        covariances = precisions.reciprocal()
        return covariances, covariances.sqrt()
    asymmetry = (precisions - precisions.mT).abs().amax()
    if float(asymmetry) > 1e-8 * max(float(precisions.abs().amax()), 1e-300):
        raise ValueError(
            f"precisions_init must be symmetric (largest |P - Pᵀ| is {float(asymmetry):.3g})"
        )
    L, info = torch.linalg.cholesky_ex(precisions)
    if bool((info != 0).any()):
        raise ValueError(
            "precisions_init must be positive definite: its Cholesky factorisation fails"
            + (f" for component {int((info != 0).nonzero()[0])}" if kind == "full" else "")
        )
    covariances = torch.cholesky_inverse(L)
    covariances = (covariances + covariances.mT) / 2
    factor, info = torch.linalg.cholesky_ex(covariances)
    if bool((info != 0).any()):
        raise ValueError("precisions_init is too ill-conditioned to invert in float64")
    return covariances, factor


def _precision_factors(factor: Tensor, kind: str) -> Tensor:
    """scikit-learn's ``precisions_cholesky_``: U = L⁻ᵀ (upper) with Σ⁻¹ = U Uᵀ for Σ = L Lᵀ
    ("full" (K, D, D), "tied" (D, D)); 1/σ for "diag" (K, D) and "spherical" (K,)."""
    if kind in ("diag", "spherical"):
        return factor.reciprocal()
    eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device)
    return torch.linalg.solve_triangular(factor, eye.expand_as(factor), upper=False).mT


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
