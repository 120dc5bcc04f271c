"""How our cost grows (issue 18, item 6): time against one size at a time (N, d, K, chains, T,
...) for the operations the other benchmarks cover, the others held fixed, with the exponent b of
time ≈ a·size^b fitted on a log-log scale.

Each sweep is geometric (a factor of 2 between points). Points are timed in interleaved rounds
(every round visits every size, in alternating order, ours and the peer one after the other), so
a change of load on the shared machine hits all sizes alike; each point is the median of its
rounds, and one measurement repeats a call that takes under 20 ms until 20 ms have passed. The
exponent is a least-squares fit over the upper points only (``FIT_FROM`` onwards: the smallest
sizes are dominated by fixed per-call overhead); its 5–95 % interval comes from a bootstrap that
redraws each point's median from its rounds. Where it is cheap the peer's curve is measured too
(scikit-learn's KMeans, GaussianMixture and PCA, F.cross_entropy): the peer comparison itself is
the other benchmarks' job.

Fixed-work fits: KMeans and GaussianMixture get an explicit start (the first K points; identity
precisions) and ``tol = 0`` with a small ``max_iter`` on both sides, and the time of a fit is
divided by the iterations it ran (a run whose centres stop moving ends early; the counts are in
the JSON), so the curves are the cost of one iteration, start and checks included.

``python -m benchmarks scaling`` measures and writes ``benchmarks/results/scaling.json``;
``python -m benchmarks.bench_scaling plot`` draws ``docs/assets/scaling.png`` from that JSON and
prints the docs table (``markdown_table``), which docs/guide/benchmarks.md holds verbatim
(tests/test_bench_scaling.py checks it).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from benchmarks.timing import time_once

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scaling.json"
FIGURE = HERE.parent / "docs" / "assets" / "scaling.png"
ROUNDS, MIN_SECONDS, BOOTSTRAP = 7, 0.02, 500

Setup = Callable[[int], Callable[[], object]]


@dataclass
class Sweep:
    """One curve: ``ours(size)`` (and ``peer(size)``) builds the data and returns the call to time.

    name: the operation; variable: the size swept; fixed: what is held fixed; sizes: geometric;
    fit_from: index of the first point in the fit; theory: the exponent the algorithm predicts
    (a string, e.g. "1" or "2 (N ≫ d)"); why: one line, the term that dominates.
    """

    key: str
    name: str
    variable: str
    fixed: str
    sizes: list[int]
    ours: Setup
    theory: str
    why: str
    peer: Setup | None = None
    peer_name: str = ""
    fit_from: int = 2


# ---- the operations ------------------------------------------------------------------------------


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class _PerIteration:
    """A fit whose time is reported per iteration: ``per`` = the iterations one fit runs (the
    same every call: the same data and start), learned from a first fit."""

    def __init__(self, fit: Callable[[], object]):
        self.fit = fit
        self.per = int(fit().n_iter_)

    def __call__(self):
        return self.fit()


def _kmeans(n: int, d: int, k: int, n_iter: int) -> _PerIteration:
    from ebm.models import KMeans

    X = _randn(n, d)
    init = X[:k].clone()
    return _PerIteration(lambda: KMeans(k, init=init, n_init=1, max_iter=n_iter, tol=0.0).fit(X))


def _sk_kmeans(n: int, d: int, k: int, n_iter: int) -> _PerIteration:
    from sklearn.cluster import KMeans as SkKMeans

    X = _randn(n, d).numpy()
    init = X[:k].copy()
    return _PerIteration(lambda: SkKMeans(k, init=init, n_init=1, max_iter=n_iter, tol=0.0).fit(X))


def _gmm_start(X: torch.Tensor, k: int):
    d = X.shape[1]
    return dict(
        weights_init=torch.full((k,), 1.0 / k, dtype=torch.float64),
        means_init=X[:k].double().clone(),
        precisions_init=torch.eye(d, dtype=torch.float64).expand(k, d, d).clone(),
    )


def _gmm(n: int, d: int, k: int, n_iter: int) -> _PerIteration:
    from ebm.models import GaussianMixture

    X = _randn(n, d)
    start = _gmm_start(X, k)
    return _PerIteration(
        lambda: GaussianMixture(k, "full", max_iter=n_iter, tol=0.0, **start).fit(X)
    )


def _sk_gmm(n: int, d: int, k: int, n_iter: int) -> _PerIteration:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = _randn(n, d).numpy()
    start = {name: value.numpy() for name, value in _gmm_start(torch.from_numpy(X), k).items()}

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # tol = 0 on purpose
            return SkGaussianMixture(
                k, covariance_type="full", max_iter=n_iter, tol=0.0, **start
            ).fit(X)

    return _PerIteration(fit)


def _pca(n: int, d: int) -> Callable[[], object]:
    from ebm.models import PCA

    X = _randn(n, d)
    return lambda: PCA(4).fit(X)


def _sk_pca(n: int, d: int) -> Callable[[], object]:
    from sklearn.decomposition import PCA as SkPCA

    X = _randn(n, d).numpy()
    return lambda: SkPCA(4).fit(X)


def _langevin(chains: int, d: int, steps: int) -> Callable[[], object]:
    from ebm.energies import MLPEnergy
    from ebm.sampling import langevin

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        energy = MLPEnergy(d, hidden=(128, 128))
    x0 = _randn(chains, d)
    g = torch.Generator().manual_seed(0)
    return lambda: langevin(energy, x0, steps, 0.01, generator=g)


def _gaussian_energy(d: int):
    from ebm.energies import GaussianEnergy

    return GaussianEnergy(torch.zeros(d), torch.eye(d))


def _ais(chains: int, n_temps: int) -> Callable[[], object]:
    from ebm.sampling import ais

    energy, g = _gaussian_energy(16), torch.Generator().manual_seed(0)
    return lambda: ais(energy, 16, chains, n_temps, generator=g)


def _tempering(n_temps: int, chains: int, steps: int) -> Callable[[], object]:
    from ebm.sampling import parallel_tempering

    energy, g = _gaussian_energy(2), torch.Generator().manual_seed(0)
    betas = [0.5**k for k in range(n_temps)]
    x0 = _randn(chains, 2)
    return lambda: parallel_tempering(energy, x0, betas, steps, 0.1, generator=g)


def _mc_dropout(n_samples: int, n: int) -> Callable[[], object]:
    from ebm.bayes import MCDropout, notes_regression_net

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = notes_regression_net(nn.ReLU)
    mc = MCDropout(net, n_samples=n_samples, seed=0)
    x = torch.linspace(-15, 15, n).view(-1, 1)
    return lambda: mc.predict(x)


def _vae_step(batch: int) -> Callable[[], object]:
    from ebm.models import VAE
    from ebm.models.vae import mlp_decoder, mlp_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = VAE(mlp_encoder((1, 8, 8), 8, (256,)), mlp_decoder((1, 8, 8), 8, (256,)), 8)
    opt = vae.configure_optimizers()
    x = torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def call():
        opt.zero_grad(set_to_none=True)
        vae.training_step(x)["loss"].backward()
        opt.step()

    return call


def _nll(n: int, k: int, peer: bool = False) -> Callable[[], object]:
    import torch.nn.functional as F

    from ebm.losses import nll_loss

    g = torch.Generator().manual_seed(0)
    E = torch.randn(n, k, generator=g).requires_grad_(True)
    target = torch.randint(0, k, (n,), generator=g)
    if peer:
        logits = (-E.detach()).requires_grad_(True)
        return lambda: F.cross_entropy(logits, target).backward()
    return lambda: nll_loss(E, target).backward()


def _laplace(n: int, width: int) -> Callable[[], object]:
    from torch.utils.data import DataLoader, TensorDataset

    from ebm.bayes import LastLayerLaplace

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    x, y = torch.randn(n, 8, generator=g), torch.randn(n, 1, generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=500)
    xq = torch.randn(200, 8, generator=g)

    def call():
        la = LastLayerLaplace(net, "regression", "full").fit(loader)
        la.optimize_prior_precision()
        return la.predict(xq)

    return call


def _gp(n: int) -> Callable[[], object]:
    from ebm.bayes import GPRegressor

    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=g)
    y = torch.sin(3 * x[:, 0]) + 0.1 * torch.randn(n, generator=g)
    return lambda: GPRegressor(n_steps=3, device="cpu").fit(x, y)


def _cnf_step(d: int, divergence: str) -> Callable[[], object]:
    from ebm.models import CNF

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cnf = CNF(d, hidden=(64, 64), divergence=divergence, method="rk4", step_size=0.5)
    opt = cnf.configure_optimizers()
    y = _randn(128, d)

    def call():
        opt.zero_grad(set_to_none=True)
        with torch.random.fork_rng(devices=[]):  # Hutchinson's probes draw from the global RNG
            torch.manual_seed(0)
            cnf.training_step(y).backward()
        opt.step()

    return call


def sweeps(scale: float = 1.0) -> list[Sweep]:
    """Every curve. ``scale`` < 1 shrinks the sizes (tests use tiny runs)."""

    def geo(start: int, n: int, factor: int = 2, floor: int = 2) -> list[int]:
        return [max(floor, round(start * scale)) * factor**i for i in range(n)]

    km_iter, gm_iter = 10, 5
    out = [
        Sweep(
            "kmeans_n",
            "KMeans fit, per Lloyd iteration (max 10)",
            "N",
            "d = 16, K = 32",
            geo(2048, 6, floor=64),
            lambda n: _kmeans(n, 16, 32, km_iter),
            "1",
            "N·K·d distances per iteration",
            lambda n: _sk_kmeans(n, 16, 32, km_iter),
            "scikit-learn",
        ),
        Sweep(
            "kmeans_d",
            "KMeans fit, per Lloyd iteration (max 10)",
            "d",
            "N = 8192, K = 32",
            geo(8, 7, floor=2),
            lambda d: _kmeans(8192, d, 32, km_iter),
            "1",
            "N·K·d distances per iteration",
            fit_from=3,
        ),
        Sweep(
            "kmeans_k",
            "KMeans fit, per Lloyd iteration (max 10)",
            "K",
            "N = 8192, d = 16",
            geo(4, 5, 4),
            lambda k: _kmeans(8192, 16, k, km_iter),
            "1",
            "N·K·d distances per iteration",
        ),
        Sweep(
            "gmm_n",
            "GaussianMixture fit, full, per EM iteration (max 5)",
            "N",
            "d = 16, K = 8",
            geo(512, 6, floor=64),
            lambda n: _gmm(n, 16, 8, gm_iter),
            "1",
            "N·K·d² Mahalanobis terms and covariance sums per iteration",
            lambda n: _sk_gmm(n, 16, 8, gm_iter),
            "scikit-learn",
        ),
        Sweep(
            "gmm_d",
            "GaussianMixture fit, full, per EM iteration (max 5)",
            "d",
            "N = 4096, K = 4",
            geo(4, 6, floor=2),
            lambda d: _gmm(4096, d, 4, gm_iter),
            "2 (N ≫ d; 3 once K·d³ ≈ N·K·d²)",
            "N·K·d² per iteration (triangular solves, covariance sums) + K·d³ Cholesky",
            lambda d: _sk_gmm(4096, d, 4, gm_iter),
            "scikit-learn",
            fit_from=3,
        ),
        Sweep(
            "gmm_k",
            "GaussianMixture fit, full, per EM iteration (max 5)",
            "K",
            "N = 4096, d = 16",
            geo(1, 6, floor=1),
            lambda k: _gmm(4096, 16, k, gm_iter),
            "1",
            "N·K·d² per iteration",
        ),
        Sweep(
            "pca_n",
            "PCA fit (4 components)",
            "N",
            "d = 32",
            geo(4096, 6, floor=64),
            lambda n: _pca(n, 32),
            "1",
            "N·d² covariance (then a d³ eigh)",
            lambda n: _sk_pca(n, 32),
            "scikit-learn",
        ),
        Sweep(
            "pca_d",
            "PCA fit (4 components)",
            "d",
            "N = 8192",
            geo(16, 6, floor=8),
            lambda d: _pca(8192, d),
            "2 (N ≫ d; 3 once d³ ≈ N·d²)",
            "N·d² covariance + d³ eigendecomposition",
            lambda d: _sk_pca(8192, d),
            "scikit-learn",
            fit_from=3,
        ),
        Sweep(
            "langevin_chains",
            "langevin, MLP energy d→128→128→1",
            "chains",
            "d = 2, 50 steps",
            geo(64, 6),
            lambda c: _langevin(c, 2, 50),
            "1",
            "chains·(2·128·d + 128²) per step",
        ),
        Sweep(
            "langevin_d",
            "langevin, MLP energy d→128→128→1",
            "d",
            "128 chains, 50 steps",
            geo(2, 6, 4),
            lambda d: _langevin(128, d, 50),
            "below 1 while d < 128, then 1",
            "chains·(2·128·d + 128²) per step: the d-free 128×128 layer dominates at small d",
            fit_from=3,
        ),
        Sweep(
            "langevin_steps",
            "langevin, MLP energy d→128→128→1",
            "T (steps)",
            "256 chains, d = 2",
            geo(8, 6),
            lambda t: _langevin(256, 2, t),
            "1",
            "one energy gradient per step",
        ),
        Sweep(
            "ais_temps",
            "ais, Gaussian d = 16 (MALA)",
            "temperatures",
            "256 chains",
            geo(4, 6),
            lambda t: _ais(256, t),
            "1",
            "one kernel step per temperature",
        ),
        Sweep(
            "ais_chains",
            "ais, Gaussian d = 16 (MALA)",
            "chains",
            "10 temperatures",
            geo(64, 6, 4),
            lambda c: _ais(c, 10),
            "1",
            "chains·d per step",
            fit_from=3,
        ),
        Sweep(
            "tempering_temps",
            "parallel_tempering, Gaussian d = 2",
            "temperatures",
            "1024 chains, 30 steps",
            geo(2, 6),
            lambda t: _tempering(t, 1024, 30),
            "1",
            "replicas·chains per step",
        ),
        Sweep(
            "mc_dropout_t",
            "MCDropout.predict, notes' net (ReLU)",
            "T (samples)",
            "1000 points",
            geo(8, 6),
            lambda t: _mc_dropout(t, 1000),
            "1",
            "T·N forward passes",
        ),
        Sweep(
            "vae_batch",
            "VAE training step, 64→256→8 MLPs, Adam",
            "N (batch)",
            "8×8 images",
            geo(128, 6),
            _vae_step,
            "1 (minus the fixed Adam step)",
            "N·(64·256 + 256·16) per pass; Adam's update is N-free",
        ),
        Sweep(
            "nll_k",
            "nll_loss forward+backward",
            "K (candidates)",
            "N = 2048",
            geo(4, 6, 4),
            lambda k: _nll(2048, k),
            "1",
            "N·K log-sum-exp",
            lambda k: _nll(2048, k, peer=True),
            "F.cross_entropy",
        ),
        Sweep(
            "laplace_n",
            "LastLayerLaplace full, regression (fit + δ + predict 200)",
            "N",
            "width 64",
            geo(500, 6),
            lambda n: _laplace(n, 64),
            "1",
            "N·W² GGN sums",
        ),
        Sweep(
            "laplace_width",
            "LastLayerLaplace full, regression (fit + δ + predict 200)",
            "width W",
            "N = 2000",
            geo(32, 6, floor=2),
            lambda w: _laplace(2000, w),
            "2 (N ≫ W), 3 once W³ ≈ N·W²",
            "N·W² GGN sums + W³ eigendecomposition",
            fit_from=3,
        ),
        Sweep(
            "gp_n",
            "GPRegressor fit (3 Adam steps on the marginal likelihood)",
            "N",
            "d = 2, RBF kernel",
            geo(64, 5, floor=8),
            _gp,
            "3 (N³ Cholesky), N² kernel below",
            "one N×N Cholesky (N³/3) and its backward per step, N² kernel entries",
        ),
        Sweep(
            "cnf_exact_d",
            "CNF training step, exact trace (rk4, 2 steps, MLP 64-64)",
            "d",
            "batch 128",
            geo(2, 5),
            lambda d: _cnf_step(d, "exact"),
            "1 while d < 64, 2 once d ≫ 64",
            "d backward passes per evaluation, each ≈ batch·(d·64 + 64²)",
        ),
        Sweep(
            "cnf_hutchinson_d",
            "CNF training step, Hutchinson trace (rk4, 2 steps, MLP 64-64)",
            "d",
            "batch 128",
            geo(2, 5),
            lambda d: _cnf_step(d, "hutchinson"),
            "below 1 while d < 64, then 1",
            "one backward pass per evaluation, ≈ batch·(d·64 + 64²)",
        ),
    ]
    return out


# ---- timing and fitting --------------------------------------------------------------------------


def _calibrate(fn: Callable[[], object], min_seconds: float) -> int:
    """Calls per measurement: enough for ``min_seconds`` (after one warm-up call)."""
    fn()
    once = time_once(fn)
    return max(1, math.ceil(min_seconds / max(once, 1e-6)))


def _measure(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def fit_exponent(sizes: list[float], seconds: list[float]) -> tuple[float, float]:
    """Least squares of log t = log a + b·log n: returns (b, a)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return b, math.exp(my - b * mx)


def _bootstrap(sizes, rounds: list[list[float]], rng: random.Random) -> tuple[float, float]:
    """5 and 95 % points of b when each point's median is redrawn from its rounds."""
    bs = []
    for _ in range(BOOTSTRAP):
        meds = [statistics.median(rng.choices(r, k=len(r))) for r in rounds]
        bs.append(fit_exponent(sizes, meds)[0])
    bs.sort()
    return bs[int(0.05 * (len(bs) - 1))], bs[int(0.95 * (len(bs) - 1))]


def _curve(sizes: list[int], times: list[list[float]], fit_from: int, rng) -> dict:
    meds = [statistics.median(t) for t in times]
    b, a = fit_exponent(sizes[fit_from:], meds[fit_from:])
    lo, hi = _bootstrap(sizes[fit_from:], times[fit_from:], rng)
    return {
        "median_s": meds,
        "min_s": [min(t) for t in times],
        "max_s": [max(t) for t in times],
        "rounds_s": times,
        "exponent": b,
        "prefactor": a,
        "exponent_5_95": [lo, hi],
    }


def measure(
    sweep: Sweep,
    rounds: int = ROUNDS,
    rng: random.Random | None = None,
    min_seconds: float = MIN_SECONDS,
) -> dict:
    """Time one sweep in interleaved rounds; returns its JSON row."""
    rng = rng or random.Random(0)
    load_before = os.getloadavg()[0]
    sides = [("ours", sweep.ours)] + ([("peer", sweep.peer)] if sweep.peer else [])
    calls = {(side, n): make(n) for side, make in sides for n in sweep.sizes}
    number = {key: _calibrate(fn, min_seconds) for key, fn in calls.items()}
    times: dict = {key: [] for key in calls}
    started = time.perf_counter()
    for r in range(rounds):
        order = sweep.sizes if r % 2 == 0 else sweep.sizes[::-1]
        for n in order:
            pair = [side for side, _ in sides]
            for side in pair if (r + sweep.sizes.index(n)) % 2 == 0 else pair[::-1]:
                fn = calls[(side, n)]
                times[(side, n)].append(_measure(fn, number[(side, n)]) / getattr(fn, "per", 1))
    row = {
        "name": f"{sweep.name}: time vs {sweep.variable} ({sweep.fixed})",
        "key": sweep.key,
        "operation": sweep.name,
        "variable": sweep.variable,
        "fixed": sweep.fixed,
        "sizes": sweep.sizes,
        "fit_points": sweep.sizes[sweep.fit_from :],
        "theory": sweep.theory,
        "why": sweep.why,
        "ours": "",
        "peer": "",
        "ratio": float("nan"),
        "target": f"b ≈ {sweep.theory}",
        "calls_per_measurement": {
            side: [number[(side, n)] for n in sweep.sizes] for side, _ in sides
        },
        "threads": torch.get_num_threads(),
        "load_1min_before_after": [load_before, os.getloadavg()[0]],
        "seconds_spent": time.perf_counter() - started,
    }
    for side, _ in sides:
        curve = _curve(sweep.sizes, [times[(side, n)] for n in sweep.sizes], sweep.fit_from, rng)
        row[f"{side}_curve"] = curve
        label = sweep.peer_name if side == "peer" else "ours"
        lo, hi = curve["exponent_5_95"]
        row[side] = f"{label}: b = {curve['exponent']:.2f} [{lo:.2f}, {hi:.2f}]"
    per = {side: [getattr(calls[(side, n)], "per", None) for n in sweep.sizes] for side, _ in sides}
    if per["ours"][0] is not None:  # times are per iteration: the iterations each fit ran
        row["iterations_per_fit"] = per
    return row


def run(
    scale: float = 1.0,
    rounds: int = ROUNDS,
    only: list[str] | None = None,
    min_seconds: float = MIN_SECONDS,
) -> list[dict]:
    """Measure every sweep (or the ``only`` keys); one row per sweep."""
    rng = random.Random(0)
    rows = []
    for sweep in sweeps(scale):
        if only and sweep.key not in only:
            continue
        try:
            row = measure(sweep, rounds, rng, min_seconds)
        except ImportError as err:  # a peer that is not installed is reported, not faked
            row = {"name": sweep.name, "key": sweep.key, "error": str(err), "ratio": float("nan")}
        print(f"  {row['name']}: {row.get('ours')} {row.get('peer') or ''}", file=sys.stderr)
        rows.append(row)
    return rows


# ---- the table and the figure --------------------------------------------------------------------


def _fmt(curve: dict | None) -> str:
    if not curve:
        return ""
    lo, hi = curve["exponent_5_95"]
    return f"{curve['exponent']:.2f} [{lo:.2f}, {hi:.2f}]"


def last_slope(sizes: list[int], seconds: list[float]) -> float:
    """The local exponent between the two largest sizes: where the curve is heading."""
    return math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2])


def markdown_table(result: dict) -> str:
    """The docs table of exponents, from a scaling JSON (``{"machine", "rows"}``)."""
    lines = [
        "| operation | size swept | held fixed | sizes (fitted from) | b, ours [5–95 %] | "
        "last step, ours | b, peer | theory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        if "error" in row:
            lines.append(f"| {row['name']} | | | | not measured: {row['error']} | | | |")
            continue
        sizes = row["sizes"]
        peer = row.get("peer_curve")
        peer_cell = f"{_fmt(peer)} ({row['peer'].split(':')[0]})" if peer else ""
        lines.append(
            f"| {row['operation']} | {row['variable']} | {row['fixed']} | "
            f"{sizes[0]}–{sizes[-1]} ({row['fit_points'][0]}) | {_fmt(row['ours_curve'])} | "
            f"{last_slope(sizes, row['ours_curve']['median_s']):.2f} | {peer_cell} | "
            f"{row['theory']} |"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path = FIGURE) -> None:
    """One log-log panel per sweep: medians with their min–max over rounds, the fitted line over
    the fitted points, the exponent in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    rows = [r for r in result["rows"] if "error" not in r]
    cols = 4
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.0 * cols, 3.1 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        sizes = row["sizes"]
        fitted = sizes[len(sizes) - len(row["fit_points"]) :]
        for side, color in (("ours", "C0"), ("peer", "C1")):
            curve = row.get(f"{side}_curve")
            if not curve:
                continue
            med = [1e3 * t for t in curve["median_s"]]
            err = [
                [m - 1e3 * lo for m, lo in zip(med, curve["min_s"])],
                [1e3 * hi - m for m, hi in zip(med, curve["max_s"])],
            ]
            label = "ours" if side == "ours" else row["peer"].split(":")[0]
            ax.errorbar(sizes, med, yerr=err, fmt="o", ms=4, color=color, capsize=2)
            line = [1e3 * curve["prefactor"] * n ** curve["exponent"] for n in fitted]
            ax.plot(fitted, line, "-", color=color, label=f"{label}: b = {curve['exponent']:.2f}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(row["variable"])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel("ms per iteration" if "iterations_per_fit" in row else "ms per call")
        ax.set_title(f"{row['operation']}\n{row['fixed']}", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    rounds = len(rows[0]["ours_curve"]["rounds_s"][0]) if rows else 0
    fig.suptitle(
        f"Time against size: medians of {rounds} interleaved rounds, bars min–max, line the fit "
        f"over the upper points (theory in the docs table). {result['machine']}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str]) -> int:
    """``plot [JSON] [PNG]``: draw the figure and print the docs table from a results JSON."""
    import json

    if not argv or argv[0] != "plot":
        print("usage: python -m benchmarks.bench_scaling plot [JSON] [PNG]", file=sys.stderr)
        return 2
    src = Path(argv[1]) if len(argv) > 1 else RESULTS
    dst = Path(argv[2]) if len(argv) > 2 else FIGURE
    result = json.loads(src.read_text())
    plot(result, dst)
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
