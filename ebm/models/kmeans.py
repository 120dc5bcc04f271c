"""k-means as an energy: E(y) = min_k ‖y − w_k‖² (the notes' eq. 20.5, corrected in ERRATA).

The energy is the reconstruction error of a decoder y ≈ Wz whose code z is one-hot (the notes'
"PCA with a one-hot z" is this model). Only the K prototypes reach zero energy and the energy
grows quadratically away from them (notes fig. 20.3), so the volume of low energy is bounded by K.
The soft version collapses the K energies at inverse temperature β instead of taking the min.

Fitting: k-means++ seeding (the greedy variant with 2 + ⌊ln K⌋ local trials per centre), then
Lloyd iterations. All ``n_init`` runs advance together as one batch on the data's device, and
distances come from one matmul per chunk, ‖y‖² − 2 y·w + ‖w‖², over row chunks sized to bound the
temporary (chunk × runs × K) block.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebm._checks import check_positive, make_generator
from ebm.models._estimator import as_query, check_data, check_fitted, check_positive_int

# rows per chunk are chosen so that one (chunk, runs·K) distance block holds about this many
# floats: small enough for the CPU caches and a bounded GPU temporary, large enough that the
# per-chunk overhead of launching a few kernels stays small.
_BLOCK_FLOATS = 1 << 21


class KMeans:
    """k-means clustering (Lloyd), best of ``n_init`` k-means++ seeded runs run as one batch.

    Parameters
    ----------
    n_clusters: K, the number of prototypes.
    n_init: independent seeded runs; the one of lowest inertia is kept.
    max_iter: Lloyd iterations per run at most.
    tol: a run stops when Σ_k ‖w_k(new) − w_k(old)‖² ≤ tol · mean per-feature variance of the
        data (scikit-learn's convention).
    seed: seeds a private generator (None = fresh entropy); the global RNG is never touched.

    Fitted attributes
    -----------------
    cluster_centers_ (K, D), labels_ (N,), inertia_ (Σ of squared distances to the closest
    centre, a float), n_iter_ (Lloyd iterations of the kept run), n_features_in_.

    The data keep their dtype (float32 gives float32 matmul distances, the fast path). Queries on
    another device or dtype are moved to the centres'.
    """

    def __init__(
        self,
        n_clusters: int,
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, Y: Tensor) -> KMeans:
        """Y: (N, D) with N >= n_clusters, finite. Returns self."""
        k = check_positive_int("n_clusters", self.n_clusters)
        runs = check_positive_int("n_init", self.n_init)
        max_iter = check_positive_int("max_iter", self.max_iter)
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or self.tol < 0:
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        Y = check_data("Y", Y, min_samples=k, what=f"n_clusters={k}")

        generator = make_generator(self.seed, Y.device)
        mean = Y.mean(0)
        X = Y - mean  # centring makes the ‖y‖² − 2y·w + ‖w‖² expansion lose fewer digits
        X_sq = X.square().sum(1)  # (N,)
        tol_abs = float(self.tol) * X.var(0, unbiased=False).mean()

        centers = _kmeans_plusplus(X, X_sq, k, runs, generator)  # (R, K, D)
        centers, n_iter = _lloyd(X, X_sq, centers, max_iter, tol_abs)
        labels, inertia = _assign(X, X_sq, centers)  # (R, N), (R,)

        best = int(inertia.argmin())
        self.cluster_centers_ = centers[best] + mean
        self.labels_ = labels[best]
        # the exact inertia of the kept run (the expansion above only ranks the runs)
        self.inertia_ = float((X - centers[best][self.labels_]).square().sum())
        self.n_iter_ = int(n_iter[best])
        self.n_features_in_ = Y.shape[1]
        return self

    # ---- using the prototypes -----------------------------------------------------------------

    def predict(self, Y: Tensor) -> Tensor:
        """Index of the closest prototype, (B, D) -> (B,) int64."""
        return self._sq_distances(Y).argmin(1)

    def energy(self, Y: Tensor) -> Tensor:
        """E(y) = min_k ‖y − w_k‖², (B, D) -> (B,). Exactly zero at the prototypes."""
        return self._sq_distances(Y).amin(1)

    def free_energy(self, Y: Tensor, beta: float, *, average: bool = False) -> Tensor:
        """Soft k-means: F_β(y) = −(1/β) log Σ_k exp(−β‖y − w_k‖²), (B, D) -> (B,).

        ``ebm.inference.free_energy`` over the K prototypes, the library's convention; with
        ``average=True`` −(1/β) log mean_k exp(−β‖y − w_k‖²) = F_β + log(K)/β. F_β ≤ E(y) and
        F_β → E(y) as β → ∞ (``beta=math.inf`` gives E exactly).
        """
        from ebm.inference import free_energy

        check_positive("beta", beta, allow_inf=True)
        distances = self._sq_distances(Y)  # (B, K)
        return free_energy(distances, beta, dim=1, average=average)

    def __call__(self, Y: Tensor) -> Tensor:
        return self.energy(Y)

    def _sq_distances(self, Y: Tensor) -> Tensor:
        """‖y − w_k‖² for every prototype, (B, D) -> (B, K), from explicit differences (exact,
        and differentiable in y), chunked to bound the (chunk, K, D) temporary."""
        W = check_fitted(self, "cluster_centers_")
        Y = as_query("Y", Y, W)
        chunk = max(1, _BLOCK_FLOATS // W.numel())
        parts = [(y[:, None, :] - W).square().sum(-1) for y in Y.split(chunk)]
        return torch.cat(parts) if parts else Y.new_zeros(0, W.shape[0])

    def __repr__(self) -> str:
        return (
            f"KMeans(n_clusters={self.n_clusters!r}, n_init={self.n_init!r}, "
            f"max_iter={self.max_iter!r}, tol={self.tol!r}, seed={self.seed!r})"
        )


# ---- the functional core: everything below works on centred data X (N, D) ---------------------


def _rows_per_chunk(width: int) -> int:
    return max(64, _BLOCK_FLOATS // max(1, width))


def _kmeans_plusplus(
    X: Tensor, X_sq: Tensor, n_clusters: int, runs: int, generator: torch.Generator
) -> Tensor:
    """Greedy k-means++ for ``runs`` independent runs at once. Returns centres (R, K, D).

    Each new centre is the best of 2 + ⌊ln K⌋ candidates drawn with probability ∝ the squared
    distance to the closest chosen centre: the candidate that most lowers the total potential
    Σ_n min_k ‖x_n − w_k‖² wins.
    """
    n, d = X.shape
    trials = 2 + int(math.log(n_clusters))
    centers = X.new_empty(runs, n_clusters, d)
    first = torch.randint(n, (runs,), generator=generator, device=X.device)
    centers[:, 0] = X[first]
    closest = _sq_dist_to(X, X_sq, centers[:, 0])  # (N, R)
    arange_runs = torch.arange(runs, device=X.device)
    for c in range(1, n_clusters):
        # sample candidates by inverting the cumulative potential (float64: N terms)
        cumulative = closest.T.double().cumsum(1)  # (R, N)
        u = torch.rand(runs, trials, generator=generator, device=X.device, dtype=torch.float64)
        idx = torch.searchsorted(cumulative, u * cumulative[:, -1:]).clamp_(max=n - 1)  # (R, T)
        candidates = X[idx]  # (R, T, D)
        potentials = _potentials(X, X_sq, candidates, closest)  # (R, T)
        best = potentials.argmin(1)  # (R,)
        chosen = candidates[arange_runs, best]  # (R, D)
        centers[:, c] = chosen
        closest = torch.minimum(closest, _sq_dist_to(X, X_sq, chosen))
    return centers


def _sq_dist_to(X: Tensor, X_sq: Tensor, points: Tensor) -> Tensor:
    """‖x_n − p_r‖² for one point per run: X (N, D), points (R, D) -> (N, R), clamped at 0."""
    return torch.addmm(X_sq[:, None] + points.square().sum(1), X, points.T, alpha=-2).clamp_(min=0)


def _potentials(X: Tensor, X_sq: Tensor, candidates: Tensor, closest: Tensor) -> Tensor:
    """Σ_n min(closest_n, ‖x_n − c‖²) for every candidate c: candidates (R, T, D), closest (N, R)
    -> (R, T)."""
    runs, trials, d = candidates.shape
    flat = candidates.reshape(runs * trials, d)
    flat_sq = flat.square().sum(1)
    total = X.new_zeros(runs, trials, dtype=torch.float64)
    step = _rows_per_chunk(runs * trials)
    for x, x_sq, near in zip(X.split(step), X_sq.split(step), closest.split(step)):
        dist = torch.addmm(x_sq[:, None] + flat_sq, x, flat.T, alpha=-2).clamp_(min=0)
        dist = torch.minimum(dist.view(-1, runs, trials), near[:, :, None])  # (c, R, T)
        total += dist.sum(0, dtype=torch.float64)
    return total


def _lloyd(
    X: Tensor, X_sq: Tensor, centers: Tensor, max_iter: int, tol_abs: Tensor
) -> tuple[Tensor, Tensor]:
    """Lloyd iterations for every run of the batch. centers (R, K, D) -> (centres, n_iter (R,)).

    A run is frozen once its centre shift drops to ``tol_abs`` (its n_iter stops counting).
    Which runs are still moving is read on the host every ``check_every`` iterations, to drop the
    converged ones from the batch: on a CPU that read costs nothing, so it happens every
    iteration; on an accelerator it waits for the queued kernels, so it happens every 8th, the
    frozen runs simply riding along in between.
    """
    runs = centers.shape[0]
    check_every = 1 if X.device.type == "cpu" else 8
    X_aug = _augment(X, X_sq)
    n_iter = torch.zeros(runs, dtype=torch.int64, device=X.device)
    active = torch.arange(runs, device=X.device)  # the runs in the working batch
    work = centers.clone()  # (R_active, K, D)
    moving = torch.ones(runs, dtype=torch.bool, device=X.device)  # per working-batch run
    for it in range(max_iter):
        new = _lloyd_step(X, X_aug, work)
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
    """[x, ‖x‖², 1] (N, D + 2): with [−2w, 1, ‖w‖²] one matmul gives ‖x − w‖² whole."""
    return torch.cat([X, X_sq[:, None], torch.ones_like(X_sq)[:, None]], dim=1)


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


def _lloyd_step(X: Tensor, X_aug: Tensor, centers: Tensor) -> Tensor:
    """One Lloyd iteration for R runs: assign every point to its closest centre, then move each
    centre to the mean of its points (an empty cluster keeps its centre). (R, K, D) -> (R, K, D)."""
    runs, k, d = centers.shape
    flat = centers.reshape(runs * k, d)
    flat_aug = torch.cat([-2 * flat, torch.ones_like(flat[:, :1]), flat.square().sum(1, True)], 1)
    offsets = torch.arange(runs, device=X.device)[:, None] * k  # run r owns clusters r·K + j
    sums = X.new_zeros(runs * k, d)
    counts = X.new_zeros(runs * k)
    step = _rows_per_chunk(runs * k)
    for x, x_aug in zip(X.split(step), X_aug.split(step)):
        scores = (flat_aug @ x_aug.T).view(runs, k, -1)  # (R, K, c) squared distances
        owner = (_closest(scores, k) + offsets).view(-1)  # (R·c,) flat cluster index
        sums.index_add_(0, owner, x.repeat(runs, 1))
        counts += torch.bincount(owner, minlength=runs * k).to(counts.dtype)
    means = sums / counts.clamp(min=1)[:, None]
    return torch.where((counts > 0)[:, None], means, flat).view(runs, k, d)


def _assign(X: Tensor, X_sq: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """Closest centre of every point for every run, and each run's inertia.
    centers (R, K, D) -> labels (R, N) int64, inertia (R,) float64."""
    runs, k, d = centers.shape
    flat = centers.reshape(runs * k, d)
    flat_sq = flat.square().sum(1)
    labels, inertia = [], X.new_zeros(runs, dtype=torch.float64)
    step = _rows_per_chunk(runs * k)
    for x, x_sq in zip(X.split(step), X_sq.split(step)):
        scores = torch.addmm(flat_sq, x, flat.T, alpha=-2).view(-1, runs, k)
        best, label = scores.min(2)  # (c, R)
        labels.append(label)
        inertia += (best + x_sq[:, None]).clamp_(min=0).sum(0, dtype=torch.float64)
    return torch.cat(labels).T.contiguous(), inertia
