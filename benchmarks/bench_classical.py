"""Closed-form classical energies vs scikit-learn, on 100,000 × 16 float32 points drawn around 32
Gaussian blobs: the k-means fit (32 clusters, n_init = 10, max_iter = 300, tol = 1e-4 on both
sides) and the PCA fit (8 components). Calls alternate in one process (``compare``).

ratio = ours / scikit-learn time, lower is better. Targets: k-means <= 1 (no slower), PCA <= 1.5.
Both libraries use all the threads they are given: torch its intra-op pool, scikit-learn's k-means
its OpenMP pool (the thread counts are in each row). The k-means rows also give both inertias, so
a speed-up cannot come from stopping early.
"""

from __future__ import annotations

import os

import torch

from benchmarks.timing import compare
from ebm.models import PCA, KMeans

N, D, K, N_INIT = 100_000, 16, 32, 10


def _blobs() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    centers = 3.0 * torch.randn(K, D, generator=g)
    return centers[torch.randint(K, (N,), generator=g)] + torch.randn(N, D, generator=g)


def _threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        openmp = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "openmp"]
        sk = max(openmp) if openmp else os.cpu_count()
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        sk = os.cpu_count()
    return f"torch {torch.get_num_threads()} threads, scikit-learn {sk}"


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def run() -> list[dict]:
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.decomposition import PCA as SkPCA

    Y = _blobs()
    Y_np = Y.numpy()
    rows = []

    fitted = {}

    def ours_kmeans():
        fitted["ours"] = KMeans(K, n_init=N_INIT, seed=0).fit(Y)

    def sk_kmeans():
        fitted["peer"] = SkKMeans(K, n_init=N_INIT, random_state=0).fit(Y_np)

    r = compare(ours_kmeans, sk_kmeans, repeats=3, warmup=1)
    rows.append(
        {
            "name": f"k-means fit {N}×{D}, K={K}, n_init={N_INIT} (CPU, float32; {_threads()})",
            "ours": f"{_ms(r['ours_s'])} (inertia {fitted['ours'].inertia_:.4g})",
            "peer": f"scikit-learn {_ms(r['peer_s'])} (inertia {fitted['peer'].inertia_:.4g})",
            "ratio": r["ratio"],
            "target": "<= 1",
        }
    )

    r = compare(lambda: PCA(8).fit(Y), lambda: SkPCA(8).fit(Y_np), repeats=15, warmup=2)
    rows.append(
        {
            "name": f"PCA fit {N}×{D}, 8 components (CPU, float32; {_threads()})",
            "ours": _ms(r["ours_s"]),
            "peer": f"scikit-learn {_ms(r['peer_s'])}",
            "ratio": r["ratio"],
            "target": "<= 1.5",
        }
    )
    return rows
