"""k-means as an energy: E(y) = min_k ‖y − w_k‖² (the notes' eq. 20.5, corrected in ERRATA).

The energy is the reconstruction error of a decoder y ≈ Wz whose code z is one-hot (the notes'
"PCA with a one-hot z" is this model). Only the K prototypes reach zero energy and the energy
grows quadratically away from them (notes fig. 20.3), so the volume of low energy is bounded by K.
The soft version collapses the K energies at inverse temperature β instead of taking the min.

Fitting: k-means++ seeding (the greedy variant with 2 + ⌊ln K⌋ local trials per centre), random
rows, or given centres, then Lloyd iterations; sample weights weight the seeding draws, the
centres' means and the inertia (scikit-learn's weighted k-means). All ``n_init`` runs advance together as one batch on the data's device, and
distances come from one matmul per chunk, ‖y‖² − 2 y·w + ‖w‖², over row chunks sized to bound the
temporary (chunk × runs × K) block.

Scale: the data are divided by a power of two near their largest magnitude (exact: no bit of
them changes) and centred before fitting, and queries are divided by the same power, so squared
distances never overflow (data at 1e30 in float32) or underflow (1e-30); in between the result
is bit-for-bit the same as without the rescaling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_int,
    check_positive,
    check_real,
    make_generator,
)
from ebm.models._estimator import (
    ParamsMixin,
    as_query,
    check_data,
    check_fitted,
    check_positive_int,
    check_sample_weight,
    power_of_two_scale,
)

__all__ = ["KMeans"]

# rows per chunk are chosen so that one (chunk, runs·K) distance block holds about this many
# floats: small enough for the CPU caches and a bounded GPU temporary, large enough that the
# per-chunk overhead of launching a few kernels stays small.
_BLOCK_FLOATS = 1 << 21

_INITS = ("k-means++", "random")


class KMeans(ParamsMixin):
    """k-means clustering (Lloyd), best of ``n_init`` seeded runs run as one batch.

    Parameters
    ----------
    n_clusters: K >= 1, the number of prototypes.
    init: how each run starts: "k-means++" (the greedy k-means++ seeding, weighted by
        ``sample_weight`` when given), "random" (K distinct rows of the data, drawn with
        probability ∝ ``sample_weight``), or an array-like (K, D) of initial centres (finite;
        then there is a single run, whatever ``n_init`` says, as in scikit-learn).
    n_init: independent seeded runs (>= 1); the one of lowest inertia is kept.
    max_iter: Lloyd iterations per run at most (>= 1).
    tol: finite, >= 0: a run stops when Σ_k ‖w_k(new) − w_k(old)‖² ≤ tol · mean per-feature
        variance of the data (scikit-learn's convention, unweighted).
    seed: seeds a private generator (None = fresh entropy); the global RNG is never touched.
    ``__init__`` only stores them: ``fit`` validates every parameter, before any work, with
    errors that name it. ``get_params``/``set_params`` make ``sklearn.base.clone`` work.

    Fitted attributes
    -----------------
    cluster_centers_ (K, D), labels_ (N,) int64, inertia_ (Σ_n w_n min_k ‖y_n − w_k‖², the
    weighted sum of squared distances to the closest centre, a Python float), n_iter_ (Lloyd
    iterations of the kept run), n_features_in_.

    Y may be a tensor or an array-like (numpy array, nested lists); integer and bool data are
    promoted to the default float dtype, floating data keep their dtype (float32 gives float32
    matmul distances, the fast path). What comes back is a torch tensor on the fitted device and
    in the fitted dtype (labels: int64). Queries (tensors or array-likes) must be finite, and
    are moved to the centres' device and dtype. An energy beyond the dtype's range (squared
    distances of float32 data at 1e20) is inf.
    """

    _estimator_type = "clusterer"

    def __init__(
        self,
        n_clusters: int,
        init: str | object = "k-means++",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor, y: object = None, sample_weight: Tensor | None = None) -> KMeans:
        """Fit the K prototypes. Returns self.

        Y: (N, D) with N >= n_clusters, finite (a tensor or array-like).
        y: ignored (scikit-learn's pipelines pass their targets here).
        sample_weight: (N,) weights, finite and >= 0, not all zero, with at least n_clusters
            positive (None: all 1). They weight the k-means++ or random seeding, each centre's
            mean (weighted Lloyd) and the inertia; a zero weight leaves a row out of all three.
        """
        k = check_positive_int("n_clusters", self.n_clusters)
        init = _check_init(self.init, k)
        runs = check_positive_int("n_init", self.n_init)
        max_iter = check_positive_int("max_iter", self.max_iter)
        tol = float(check_real("tol", self.tol, 0.0))
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
        Y = check_data("Y", Y, min_samples=k, what=f"n_clusters={k}")
        weights = check_sample_weight(sample_weight, Y.shape[0], Y)
        if weights is not None and int((weights > 0).sum()) < k:
            raise ValueError(
                f"sample_weight must give a positive weight to at least n_clusters={k} rows, "
                f"got {int((weights > 0).sum())}"
            )
        if isinstance(init, Tensor):
            if init.shape[1] != Y.shape[1]:
                raise ValueError(
                    f"init must have shape (n_clusters, D) = ({k}, {Y.shape[1]}) like the data, "
                    f"got {tuple(init.shape)}"
                )
            init = init.to(device=Y.device, dtype=Y.dtype)
            if not torch.isfinite(init).all():
                raise ValueError(f"init holds values beyond the range of Y's dtype {Y.dtype}")
            runs = 1  # as scikit-learn: given centres make every run the same

        generator = make_generator(self.seed, Y.device)
        scale = power_of_two_scale(Y)
        Z = Y / scale  # exact: a power of two
        mean = Z.mean(0)
        X = Z - mean  # centring makes the ‖y‖² − 2y·w + ‖w‖² expansion lose fewer digits
        X_sq = X.square().sum(1)  # (N,)
        # the mean per-feature variance is mean_n ‖x_n‖² / D, X being centred (its mean is
        # rounding residue): from X_sq, without X.var(0)'s passes over the data
        tol_abs = tol * X_sq.mean() / X.shape[1]
        w_scale = 1.0 if weights is None else power_of_two_scale(weights)
        w = None if weights is None else weights / w_scale  # exact; max in [0.5, 1)

        if isinstance(init, Tensor):
            centers = (init / scale - mean)[None].clone()  # (1, K, D)
        elif init == "random":
            centers = X[_random_rows(w, runs, k, X.shape[0], generator, X.device)]  # (R, K, D)
        else:
            centers = _kmeans_plusplus(X, X_sq, k, runs, generator, w)  # (R, K, D)
        centers, n_iter = _lloyd(X, X_sq, centers, max_iter, tol_abs, w)
        labels, inertia = _assign(X, X_sq, centers, w)  # (R, N), (R,)

        best = int(inertia.argmin())
        self.cluster_centers_ = (centers[best] + mean) * scale
        self.labels_ = labels[best]
        # the exact inertia of the kept run (the expansion above only ranks the runs), summed in
        # float64 and scaled back as a Python float: finite for any float32 data
        residual = (X - centers[best][self.labels_]).square().sum(1, dtype=torch.float64)
        if w is not None:
            residual = residual * w
        self.inertia_ = float(residual.sum()) * scale * scale * w_scale
        if math.isinf(self.inertia_):
            raise ValueError(
                f"the inertia of Y overflows float64 (Y's largest |value| is "
                f"{float(Y.abs().max()):.3g}): rescale Y"
            )
        self.n_iter_ = int(n_iter[best])
        self.n_features_in_ = Y.shape[1]
        self._scale = scale
        return self

    def fit_predict(
        self, Y: Tensor, y: object = None, sample_weight: Tensor | None = None
    ) -> Tensor:
        """Fit, then the label of every row: Y (N, D) -> labels_ (N,) int64.

        Y, sample_weight: as in ``fit``; y: ignored (scikit-learn's pipelines pass targets).
        """
        return self.fit(Y, sample_weight=sample_weight).labels_

    def fit_transform(
        self, Y: Tensor, y: object = None, sample_weight: Tensor | None = None
    ) -> Tensor:
        """Fit, then ``transform(Y)``: Y (N, D) -> (N, K) distances.

        Y, sample_weight: as in ``fit``; y: ignored (scikit-learn's pipelines pass targets).
        """
        return self.fit(Y, sample_weight=sample_weight).transform(Y)

    # ---- using the prototypes -----------------------------------------------------------------

    def predict(self, Y: Tensor) -> Tensor:
        """Index of the closest prototype, (B, D) -> (B,) int64. Y must be finite.

        A query so far away that its squared distances overflow the dtype is still labelled
        right: its row is compared by −2 y·w_k + ‖w_k‖² at a power-of-two scale of its own (the
        ‖y‖² they share cancels), instead of by a row of infs that would all tie.
        """
        W = check_fitted(self, "cluster_centers_")
        Y = as_query("Y", Y, W) / self._scale
        W = W / self._scale
        distances = _explicit_sq_distances(Y, W)  # (B, K)
        labels = distances.argmin(1)
        overflow = torch.isinf(distances.amin(1))
        if bool(overflow.any()):
            far = Y[overflow]  # (F, D)
            exponent = torch.frexp(far.abs().amax(1, keepdim=True)).exponent
            limit = math.frexp(torch.finfo(far.dtype).max)[1] - 1
            r = torch.exp2(exponent.clamp(max=limit).to(far.dtype))  # (F, 1) powers of two
            scores = W.square().sum(1) / r - 2 * (far / r) @ W.T  # (F, K) = (‖w‖² − 2y·w)/r
            labels[overflow] = scores.argmin(1)
        return labels

    def energy(self, Y: Tensor) -> Tensor:
        """E(y) = min_k ‖y − w_k‖². Y: (B, D) finite queries -> (B,). Zero at the prototypes."""
        return self._unscale(self._scaled_sq_distances(Y).amin(1))

    def transform(self, Y: Tensor) -> Tensor:
        """Euclidean (not squared) distance to every prototype, ‖y − w_k‖: (B, D) -> (B, K), as
        scikit-learn's ``KMeans.transform``. Y must be finite; the result is in the fitted
        dtype, on the fitted device."""
        return self._scaled_sq_distances(Y).sqrt() * self._scale  # exact rescaling back

    def score(self, Y: Tensor, y: object = None, sample_weight: Tensor | None = None) -> float:
        """−Σ_b w_b min_k ‖y_b − w_k‖², the opposite of the (weighted) inertia of the batch
        (higher is better, as scikit-learn's ``KMeans.score``). Y: (B, D), finite;
        sample_weight: (B,) as in ``fit`` (None: all 1); y: ignored. A Python float."""
        energy = self.energy(Y).to(torch.float64)  # (B,)
        weights = check_sample_weight(sample_weight, energy.shape[0], energy)
        return -float(energy.sum() if weights is None else energy @ weights)

    def free_energy(self, Y: Tensor, beta: float, *, average: bool = False) -> Tensor:
        """Soft k-means: F_β(y) = −(1/β) log Σ_k exp(−β‖y − w_k‖²). Y: (B, D) -> (B,).

        ``ebm.inference.free_energy`` over the K prototypes, the library's convention; with
        ``average=True`` −(1/β) log mean_k exp(−β‖y − w_k‖²) = F_β + log(K)/β. F_β ≤ E(y) and
        F_β → E(y) as β → ∞ (``beta=math.inf`` gives E exactly).
        """
        from ebm.inference import free_energy

        check_positive("beta", beta, allow_inf=True)
        distances = self._scaled_sq_distances(Y)  # (B, K), in units of scale²
        # F_β(s²·d) = s²·F_{βs²}(d): the same number without forming s²·d
        scaled_beta = float(beta) * self._scale * self._scale
        if scaled_beta == 0.0 or math.isinf(scaled_beta) and not math.isinf(beta):
            return free_energy(self._unscale(distances), beta, dim=1, average=average)
        return self._unscale(free_energy(distances, scaled_beta, dim=1, average=average))

    def __call__(self, Y: Tensor) -> Tensor:
        """``energy(Y)``: the estimator used as an energy function, Y (B, D) -> (B,)."""
        return self.energy(Y)

    def _scaled_sq_distances(self, Y: Tensor) -> Tensor:
        """‖y − w_k‖² / s² for every prototype, (B, D) -> (B, K), s the fit's power-of-two scale
        (exact and differentiable in y)."""
        W = check_fitted(self, "cluster_centers_")
        return _explicit_sq_distances(as_query("Y", Y, W) / self._scale, W / self._scale)

    def _unscale(self, values: Tensor) -> Tensor:
        """Back from units of s² (two exact multiplications: s² itself may not be representable,
        and 0·inf would be NaN); values beyond the dtype's range become inf."""
        return values * self._scale * self._scale


def _check_init(init: object, n_clusters: int) -> str | Tensor:
    """ "k-means++", "random", or centres (n_clusters, D) as a finite floating tensor."""
    if isinstance(init, str):
        return check_choice("init", init, _INITS)
    if init is None or isinstance(init, (bool, int, float)):
        raise ValueError(
            f"init must be one of {_INITS} or an array-like (n_clusters, D) of centres, got "
            f"{init!r}"
        )
    centers = as_float_tensor("init", init, ndim=2)
    if centers.shape[0] != n_clusters or centers.shape[1] < 1:
        raise ValueError(
            f"init must have shape (n_clusters, D) = ({n_clusters}, D), got {tuple(centers.shape)}"
        )
    return centers


# ---- the functional core: everything below works on centred data X (N, D) ---------------------


def _explicit_sq_distances(Y: Tensor, W: Tensor) -> Tensor:
    """‖y − w_k‖² from explicit differences: Y (B, D), W (K, D) -> (B, K), chunked to bound the
    (chunk, K, D) temporary."""
    chunk = max(1, _BLOCK_FLOATS // W.numel())
    parts = [(y[:, None, :] - W).square().sum(-1) for y in Y.split(chunk)]
    return torch.cat(parts) if parts else Y.new_zeros(0, W.shape[0])


def _rows_per_chunk(width: int) -> int:
    return max(64, _BLOCK_FLOATS // max(1, width))


def _kmeans_plusplus(
    X: Tensor,
    X_sq: Tensor,
    n_clusters: int,
    runs: int,
    generator: torch.Generator,
    w: Tensor | None = None,
) -> Tensor:
    """Greedy k-means++ for ``runs`` independent runs at once. Returns centres (R, K, D).

    The first centre is drawn with probability ∝ w_n (uniform without weights). Each new centre
    is the best of 2 + ⌊ln K⌋ candidates drawn with probability ∝ w_n times the squared distance
    to the closest chosen centre: the candidate that most lowers the total potential
    Σ_n w_n min_k ‖x_n − w_k‖² wins (scikit-learn's weighted k-means++).
    """
    n, d = X.shape
    trials = 2 + int(math.log(n_clusters))
    centers = X.new_empty(runs, n_clusters, d)
    if w is None:
        first = torch.randint(n, (runs,), generator=generator, device=X.device)
    else:  # inverting the cumulative weight (no limit on N, unlike torch.multinomial's 2²⁴)
        cumulative = w.double().cumsum(0)
        u = torch.rand(runs, generator=generator, device=X.device, dtype=torch.float64)
        first = torch.searchsorted(cumulative, u * cumulative[-1]).clamp_(max=n - 1)
    centers[:, 0] = X[first]
    closest = _sq_dist_to(X, X_sq, centers[:, 0])  # (N, R)
    arange_runs = torch.arange(runs, device=X.device)
    for c in range(1, n_clusters):
        # sample candidates by inverting the cumulative potential (float64: N terms)
        weighted = closest.T.double() if w is None else closest.T.double() * w.double()
        cumulative = weighted.cumsum(1)  # (R, N)
        u = torch.rand(runs, trials, generator=generator, device=X.device, dtype=torch.float64)
        idx = torch.searchsorted(cumulative, u * cumulative[:, -1:]).clamp_(max=n - 1)  # (R, T)
        candidates = X[idx]  # (R, T, D)
        potentials = _potentials(X, X_sq, candidates, closest, w)  # (R, T)
        best = potentials.argmin(1)  # (R,)
        chosen = candidates[arange_runs, best]  # (R, D)
        centers[:, c] = chosen
        closest = torch.minimum(closest, _sq_dist_to(X, X_sq, chosen))
    return centers


def _random_rows(
    w: Tensor | None, runs: int, k: int, n: int, generator: torch.Generator, device
) -> Tensor:
    """K distinct row indices per run, (R, K), drawn with probability ∝ w without replacement
    (uniformly without w): the K largest keys log(u)/w_n, u ~ U(0, 1) (Efraimidis–Spirakis; a
    zero weight gives −inf, never drawn while K weights are positive). One run at a time, so the
    temporary is (N,) whatever R."""
    rows = []
    for _ in range(runs):
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        keys = u.clamp_(min=torch.finfo(torch.float64).tiny).log_()
        if w is not None:
            keys = keys / w.double()
        rows.append(keys.topk(k).indices)
    return torch.stack(rows)


def _sq_dist_to(X: Tensor, X_sq: Tensor, points: Tensor) -> Tensor:
    """‖x_n − p_r‖² for one point per run: X (N, D), points (R, D) -> (N, R), clamped at 0."""
    return torch.addmm(X_sq[:, None] + points.square().sum(1), X, points.T, alpha=-2).clamp_(min=0)


def _potentials(
    X: Tensor, X_sq: Tensor, candidates: Tensor, closest: Tensor, w: Tensor | None = None
) -> Tensor:
    """Σ_n w_n min(closest_n, ‖x_n − c‖²) for every candidate c: candidates (R, T, D), closest
    (N, R), w (N,) or None (all 1) -> (R, T)."""
    runs, trials, d = candidates.shape
    flat = candidates.reshape(runs * trials, d)
    flat_sq = flat.square().sum(1)
    total = X.new_zeros(runs, trials, dtype=torch.float64)
    step = _rows_per_chunk(runs * trials)
    for i, (x, x_sq, near) in enumerate(zip(X.split(step), X_sq.split(step), closest.split(step))):
        dist = torch.addmm(x_sq[:, None] + flat_sq, x, flat.T, alpha=-2).clamp_(min=0)
        dist = torch.minimum(dist.view(-1, runs, trials), near[:, :, None])  # (c, R, T)
        if w is not None:
            dist = dist * w[i * step : i * step + len(x), None, None]
        total += dist.sum(0, dtype=torch.float64)
    return total


def _lloyd(
    X: Tensor,
    X_sq: Tensor,
    centers: Tensor,
    max_iter: int,
    tol_abs: Tensor,
    w: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Lloyd iterations for every run of the batch. centers (R, K, D) -> (centres, n_iter (R,)).
    w: (N,) sample weights (None: all 1): each centre moves to its points' weighted mean.

    A run is frozen once its centre shift drops to ``tol_abs`` (its n_iter stops counting).
    Which runs are still moving is read on the host every ``check_every`` iterations, to drop the
    converged ones from the batch: on a CPU that read costs nothing, so it happens every
    iteration; on an accelerator it waits for the queued kernels, so it happens every 8th, the
    frozen runs simply riding along in between.
    """
    runs = centers.shape[0]
    check_every = 1 if X.device.type == "cpu" else 8
    X_aug = _augment(X, X_sq)  # (D + 2, N)
    n_iter = torch.zeros(runs, dtype=torch.int64, device=X.device)
    active = torch.arange(runs, device=X.device)  # the runs in the working batch
    work = centers.clone()  # (R_active, K, D)
    moving = torch.ones(runs, dtype=torch.bool, device=X.device)  # per working-batch run
    for it in range(max_iter):
        new = _lloyd_step(X, X_aug, work, w)
        shift = (new - work).square().sum((1, 2))  # (R_active,)
        n_iter[active] += moving.long()
        work = torch.where(moving[:, None, None], new, work)
        moving = moving & (shift > tol_abs)
        if (it + 1) % check_every == 0 or it == max_iter - 1:
            centers[active] = work
            still = moving.nonzero().squeeze(1)  # host sync
            if still.numel() == 0:
                break
            if still.numel() < moving.numel():
                active, work, moving = active[still], work[still], moving[still]
    return centers, n_iter


def _augment(X: Tensor, X_sq: Tensor) -> Tensor:
    """[x, ‖x‖², 1] stored transposed, (D + 2, N): with [−2w, 1, ‖w‖²] one matmul gives
    ‖x − w‖² whole. Transposed and contiguous because (K, D + 2) @ (D + 2, N) then reads its
    right operand row by row: on a CPU that matmul takes about half the time it takes through a
    transposed view of an (N, D + 2) array."""
    return torch.cat([X.T, X_sq[None], torch.ones_like(X_sq)[None]], dim=0).contiguous()


def _closest(scores: Tensor, k: int) -> Tensor:
    """Index of the smallest of ``k`` squared distances along dim 1: scores (R, K, c) -> (R, c).

    torch's argmin over a short dimension is several times slower than its plain min, so for
    K <= 256 the index is packed into the lowest ⌈log₂ K⌉ bits of each (non-negative, hence
    order-preserving) float's bit pattern and one integer min finds both. Only near-ties closer
    than ~2⁻¹⁵ relative can resolve either way, which leaves Lloyd's algorithm unchanged.
    """
    bits = max(1, math.ceil(math.log2(k)))
    int_type = {torch.float32: torch.int32, torch.float64: torch.int64}.get(scores.dtype)
    if int_type is None or bits > 8:
        return scores.argmin(1)
    index = torch.arange(k, device=scores.device, dtype=int_type)[:, None]
    packed = scores.clamp_(min=0).view(int_type)
    packed.bitwise_and_(-(1 << bits)).bitwise_or_(index)
    return packed.amin(1).bitwise_and_((1 << bits) - 1).long()


def _lloyd_step(X: Tensor, X_aug: Tensor, centers: Tensor, w: Tensor | None = None) -> Tensor:
    """One Lloyd iteration for R runs: assign every point to its closest centre, then move each
    centre to the (w-weighted) mean of its points (a cluster of no weight keeps its centre).
    X (N, D), X_aug (D + 2, N) from ``_augment``, centers (R, K, D) -> (R, K, D)."""
    runs, k, d = centers.shape
    flat = centers.reshape(runs * k, d)
    flat_aug = torch.cat([-2 * flat, torch.ones_like(flat[:, :1]), flat.square().sum(1, True)], 1)
    offsets = torch.arange(runs, device=X.device)[:, None] * k  # run r owns clusters r·K + j
    sums = X.new_zeros(runs * k, d)
    counts = X.new_zeros(runs * k)
    step = _rows_per_chunk(runs * k)
    for i, (x, x_aug) in enumerate(zip(X.split(step), X_aug.split(step, dim=1))):
        if k <= 256:  # the packed min of _closest over (R, K, c)
            scores = (flat_aug @ x_aug).view(runs, k, -1)  # (R, K, c) squared distances
            nearest = _closest(scores, k)  # (R, c)
        else:  # argmin along a contiguous K is ~3× faster than along a strided one
            scores = (x_aug.T @ flat_aug.T).view(-1, runs, k)  # (c, R, K)
            nearest = scores.argmin(2).T  # (R, c)
        owner = (nearest + offsets).reshape(-1)  # (R·c,) flat cluster index
        if w is None:
            sums.index_add_(0, owner, x if runs == 1 else x.repeat(runs, 1))
            counts += torch.bincount(owner, minlength=runs * k).to(counts.dtype)
        else:
            wc = w[i * step : i * step + len(x)]  # (c,)
            xw = x * wc[:, None]
            sums.index_add_(0, owner, xw if runs == 1 else xw.repeat(runs, 1))
            counts.index_add_(0, owner, wc if runs == 1 else wc.repeat(runs))
    means = sums / counts.clamp(min=1)[:, None]
    return torch.where((counts > 0)[:, None], means, flat).view(runs, k, d)


def _assign(
    X: Tensor, X_sq: Tensor, centers: Tensor, w: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Closest centre of every point for every run, and each run's (w-weighted) inertia.
    centers (R, K, D), w (N,) or None -> labels (R, N) int64, inertia (R,) float64."""
    runs, k, d = centers.shape
    flat = centers.reshape(runs * k, d)
    flat_sq = flat.square().sum(1)
    labels, inertia = [], X.new_zeros(runs, dtype=torch.float64)
    step = _rows_per_chunk(runs * k)
    for i, (x, x_sq) in enumerate(zip(X.split(step), X_sq.split(step))):
        scores = torch.addmm(flat_sq, x, flat.T, alpha=-2).view(-1, runs, k)
        best, label = scores.min(2)  # (c, R)
        labels.append(label)
        best = (best + x_sq[:, None]).clamp_(min=0)
        if w is not None:
            best = best * w[i * step : i * step + len(x), None]
        inertia += best.sum(0, dtype=torch.float64)
    return torch.cat(labels).T.contiguous(), inertia
