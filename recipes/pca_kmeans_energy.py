"""Energies whose volume of low energy is limited: PCA, k-means, Gaussian mixture (notes ch. 20,
figs. 20.3 and 20.4), on data near the parabola y₂ = y₁² and on the spiral.

PCA gives low energy to a line only, k-means to K points, the mixture to K Gaussian bumps: none can
be low everywhere. The soft k-means free energy −(1/β) log Σ_k exp(−β‖y − w_k‖²) goes from one
broad bowl (small β) to the K sharp valleys of k-means (β → ∞).
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ebm.data import parabola, spiral  # noqa: E402
from ebm.models import PCA, GaussianMixture, KMeans  # noqa: E402
from ebm.plot import energy_landscape  # noqa: E402
from ebm.recipe import parse_args, print_table, save_figure, write_results  # noqa: E402

args = parse_args(__doc__)
n_grid = 90 if args.quick else 250

# ---- data: the notes' manifold y₂ = y₁² with noise, and the three-armed spiral -----------------
datasets = {
    "parabola": (parabola(1000 if args.quick else 3000, noise=0.05, seed=args.seed), 20),
    "spiral": (spiral(300 if args.quick else 1000, seed=args.seed)[0], 30),
}
boxes = {"parabola": ((-2, 2), (-0.7, 2.8)), "spiral": ((-1.2, 1.2), (-1.2, 1.2))}

# ---- fit the three closed-form models and draw their energies -------------------------------
fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
results = {}
for row, (name, (Y, n_prototypes)) in enumerate(datasets.items()):
    xlim, ylim = boxes[name]
    pca = PCA(n_components=1).fit(Y)
    kmeans = KMeans(n_prototypes, n_init=4 if args.quick else 10, seed=args.seed).fit(Y)
    gmm = GaussianMixture(n_prototypes // 2, "full", seed=args.seed).fit(Y)
    panels = [
        (pca.energy, False, "PCA, k = 1: ‖(y − μ) − WᵀW(y − μ)‖²"),
        (kmeans.energy, True, f"k-means, K = {n_prototypes}: log min_k ‖y − w_k‖²"),
        (gmm.energy, True, f"GMM, K = {n_prototypes // 2}: log(−log p(y) − min)"),
    ]
    for ax, (energy, log, title) in zip(axes[row], panels):
        energy_landscape(ax, energy, xlim, ylim, n=n_grid, data=Y, log=log, title=title, levels=8)
    centers = kmeans.cluster_centers_
    axes[row, 1].scatter(centers[:, 0], centers[:, 1], marker="x", c="w", s=30)
    axes[row, 0].set_ylabel(name)
    results[name] = {
        "pca_explained_variance_ratio": pca.explained_variance_ratio_[0].item(),
        "pca_mean_energy": pca.energy(Y).mean().item(),
        "kmeans_inertia_per_point": kmeans.inertia_ / len(Y),
        "kmeans_n_iter": kmeans.n_iter_,
        "gmm_mean_log_likelihood": gmm.score(Y),
    }
fig.suptitle("Limiting the volume of low energy (dark = low): PCA, k-means, Gaussian mixture")
fig.tight_layout()
save_figure(fig, args.out, "pca_kmeans_energy")

# ---- soft k-means: the free energy over the prototypes at several inverse temperatures -------
Y, _ = datasets["parabola"]
kmeans = KMeans(8, n_init=4 if args.quick else 10, seed=args.seed).fit(Y)  # few: valleys show
betas = [0.3, 3.0, 30.0, math.inf]
fig, axes = plt.subplots(1, len(betas), figsize=(4.6 * len(betas), 4))
xlim, ylim = boxes["parabola"]
for ax, beta in zip(axes, betas):
    energy_landscape(
        ax,
        lambda y, beta=beta: kmeans.free_energy(y, beta),
        xlim,
        ylim,
        n=n_grid,
        data=Y,
        title=f"β = {beta:g}" + (" (k-means)" if math.isinf(beta) else ""),
        levels=8,
    )
    ax.scatter(kmeans.cluster_centers_[:, 0], kmeans.cluster_centers_[:, 1], marker="x", c="w")
fig.suptitle("Soft k-means free energy F_β(y) = −(1/β) log Σ_k exp(−β‖y − w_k‖²)")
fig.tight_layout()
save_figure(fig, args.out, "pca_kmeans_energy_soft")
results["soft_kmeans_mean_free_energy_on_data"] = {
    f"{beta:g}": kmeans.free_energy(Y, beta).mean().item() for beta in betas
}
write_results(args.out, "pca_kmeans_energy", results)
print_table(
    "limited low-energy volume: fits on the data",
    {
        name: {
            "PCA var. ratio": r["pca_explained_variance_ratio"],
            "PCA mean E": r["pca_mean_energy"],
            "k-means E/point": r["kmeans_inertia_per_point"],
            "k-means iters": r["kmeans_n_iter"],
            "GMM mean log p": r["gmm_mean_log_likelihood"],
        }
        for name, r in ((name, results[name]) for name in datasets)
    },
    header="data",
)
print_table(
    "soft k-means on the parabola: mean free energy F_β on the data",
    {
        f"β = {beta}": value
        for beta, value in results["soft_kmeans_mean_free_energy_on_data"].items()
    },
)
