"""Energies whose volume of low energy is limited: PCA, k-means, Gaussian mixture (notes ch. 20,
figs. 20.3 and 20.4), on data near the parabola y₂ = y₁² and on the spiral.

PCA gives low energy to a line only, k-means to K points, the mixture to K Gaussian bumps: none can
be low everywhere. The soft k-means free energy F_β(y) = −(1/β) log Σ_k exp(−β‖y − w_k‖²) (the
notes' sum over the K prototypes) goes from one broad bowl (small β) to the K sharp valleys of
k-means (β → ∞). Beside PCA, the tied-weight LinearAutoencoder trained by gradient ends at
PCA's principal line with orthonormal weights (pca_kmeans_energy_autoencoder.png).
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ebm.data import parabola, spiral  # noqa: E402
from ebm.models import PCA, GaussianMixture, KMeans, LinearAutoencoder  # noqa: E402
from ebm.plot import energy_image, evaluate_on_grid, robust_range, use_style  # noqa: E402
from ebm.recipe import parse_args, print_table, save_figure, write_results  # noqa: E402
from ebm.train import Trainer  # noqa: E402

args = parse_args(__doc__)
use_style()
n_grid = 90 if args.quick else 250

# ---- data: the notes' manifold y₂ = y₁² with noise, and the three-armed spiral -----------------
datasets = {
    "parabola": (
        parabola(
            1000 if args.quick else 3000,
            noise=0.05,
            generator=torch.Generator().manual_seed(args.seed),
        ),
        20,
    ),
    "spiral": (
        spiral(300 if args.quick else 1000, generator=torch.Generator().manual_seed(args.seed))[0],
        30,
    ),
}
boxes = {"parabola": ((-2, 2), (-0.7, 2.8)), "spiral": ((-1.2, 1.2), (-1.2, 1.2))}
# Colour ranges: the squared distances of PCA and k-means share one log₁₀ scale per row, clipped
# below at its 1st percentile (both are 0 on their line / prototypes); the mixture's −log p is in
# nats and has its own scale, clipped above at the grid's 80th percentile (a narrow component's
# spike and the far corners would otherwise flatten the structure along the data).
LOW, HIGH_GMM = 0.01, 0.80


def scatter_data(ax, Y):
    ax.scatter(Y[:, 0], Y[:, 1], s=2, c="r", alpha=0.5, linewidths=0)


# ---- fit the three closed-form models and draw their energies -------------------------------
# one row per model, one column per data set: every panel has its own titled colourbar (PCA's and
# k-means' share one range per column, so their colourbars read the same)
fig, axes = plt.subplots(3, 2, figsize=(10, 13.5), layout="constrained")
results, colour_ranges = {}, {}
for col, (name, (Y, n_prototypes)) in enumerate(datasets.items()):
    xlim, ylim = boxes[name]
    pca = PCA(n_components=1).fit(Y)
    kmeans = KMeans(n_prototypes, n_init=4 if args.quick else 10, seed=args.seed).fit(Y)
    gmm = GaussianMixture(n_prototypes // 2, "full", seed=args.seed).fit(Y)
    E_pca, _, _ = evaluate_on_grid(pca.energy, xlim, ylim, n_grid)
    E_km, _, _ = evaluate_on_grid(kmeans.energy, xlim, ylim, n_grid)
    E_gmm, _, _ = evaluate_on_grid(gmm.energy, xlim, ylim, n_grid)
    log_pca, log_km = E_pca.log10(), E_km.log10()  # −inf exactly on the line / a prototype
    lo, hi = robust_range(log_pca, log_km, lower=LOW, upper=1.0)
    g_lo, g_hi = robust_range(E_gmm, lower=0.0, upper=HIGH_GMM)
    colour_ranges[name] = {"log10_sq_distance": (lo, hi), "gmm_nats": (g_lo, g_hi)}
    label = "log₁₀ squared distance\n(clipped below at the 1st percentile)"
    energy_image(axes[0, col], log_pca, xlim, ylim, lo, hi, label=label)
    energy_image(axes[1, col], log_km, xlim, ylim, lo, hi, label=label)
    energy_image(
        axes[2, col],
        E_gmm,
        xlim,
        ylim,
        g_lo,
        g_hi,
        label=f"−log p(y), nats\n(clipped above at the {100 * HIGH_GMM:.0f}th percentile)",
    )
    axes[0, col].set_title(f"{name}: PCA, k = 1\n‖(y − μ) − WᵀW(y − μ)‖²")
    axes[1, col].set_title(f"{name}: k-means, K = {n_prototypes}\nmin_k ‖y − w_k‖²")
    axes[2, col].set_title(f"{name}: Gaussian mixture, K = {n_prototypes // 2}\n−log p(y)")
    for ax in axes[:, col]:
        scatter_data(ax, Y)
        ax.set(xlabel="y₁", ylabel="y₂")
    centers = kmeans.cluster_centers_
    axes[1, col].scatter(centers[:, 0], centers[:, 1], marker="x", c="w", s=30, linewidths=1.5)
    results[name] = {
        "pca_explained_variance_ratio": pca.explained_variance_ratio_[0].item(),
        "pca_mean_energy": pca.energy(Y).mean().item(),
        "kmeans_inertia_per_point": kmeans.inertia_ / len(Y),
        "kmeans_n_iter": kmeans.n_iter_,
        "gmm_mean_log_likelihood": gmm.score(Y),
    }
fig.suptitle(
    "Limiting the volume of low energy (dark = low; red: data; ×: k-means prototypes)\n"
    "PCA and k-means share one colour scale per data set"
)
save_figure(fig, args.out, "pca_kmeans_energy")

# ---- soft k-means: the free energy over the prototypes at several inverse temperatures -------
# F_β ≤ min_k ‖y − w_k‖², and the sum over K makes F_β − log(K)/β ≤ F_β ≤ F∞: its level drops as
# β shrinks. The panels compare shapes, so each shows F_β − min over the box, on one log scale.
Y, _ = datasets["parabola"]
kmeans = KMeans(8, n_init=4 if args.quick else 10, seed=args.seed).fit(Y)  # few: valleys show
betas = [0.3, 3.0, 30.0, math.inf]
xlim, ylim = boxes["parabola"]
excess, minima = {}, {}
for beta in betas:
    F, _, _ = evaluate_on_grid(lambda y, beta=beta: kmeans.free_energy(y, beta), xlim, ylim, n_grid)
    minima[beta] = F.min().item()
    excess[beta] = (F - F.min()).log10()
lo, hi = robust_range(*excess.values(), lower=LOW, upper=1.0)
fig, axes = plt.subplots(2, 2, figsize=(10, 8.6), layout="constrained", sharex=True, sharey=True)
for ax, beta in zip(axes.flat, betas):
    image = energy_image(ax, excess[beta], xlim, ylim, lo, hi, colorbar=False)
    scatter_data(ax, Y)
    ax.scatter(kmeans.cluster_centers_[:, 0], kmeans.cluster_centers_[:, 1], marker="x", c="w")
    name = "β = ∞ (k-means)" if math.isinf(beta) else f"β = {beta:g}"
    ax.set_title(f"{name}: min over the box {minima[beta]:.3g}")
for ax in axes[1]:
    ax.set_xlabel("y₁")
for ax in axes[:, 0]:
    ax.set_ylabel("y₂")
fig.colorbar(
    image,
    ax=axes,
    shrink=0.7,
    extend="min",
    label="log₁₀ [F_β(y) − min_box F_β]  (clipped below at the 1st percentile)",
)
fig.suptitle(
    "Soft k-means, K = 8: F_β(y) = −(1/β) log Σ_k exp(−β‖y − w_k‖²) (dark = low; ×: w_k)\n"
    "one broad bowl at small β, the K valleys of k-means as β → ∞"
)
save_figure(fig, args.out, "pca_kmeans_energy_soft")
results["soft_kmeans_mean_free_energy_on_data"] = {
    f"{beta:g}": kmeans.free_energy(Y, beta).mean().item() for beta in betas
}
results["soft_kmeans_min_free_energy_on_grid"] = {f"{b:g}": m for b, m in minima.items()}
results["colour_ranges"] = colour_ranges

# ---- PCA as a linear autoencoder (the Warwick slides): G(y) = b + WᵀW(y − b), tied weights ---
# Trained by gradient on the mean reconstruction error, with no constraint: its minimisers have
# WWᵀ = I and rowspan(W) = PCA's principal subspace (Baldi & Hornik 1989). The closed-form check:
# the principal angle between the two subspaces, ‖WWᵀ − I‖, the distance from PCA's mean to the
# learned line (b is free along it), and the two mean energies.
ae_steps = 1000 if args.quick else 2000
fig, axes = plt.subplots(2, 2, figsize=(10, 9), layout="constrained")
results["linear_autoencoder"] = {"steps": ae_steps, "lr": 1e-2, "n_components": 1}
for col, (name, (Y, _)) in enumerate(datasets.items()):
    xlim, ylim = boxes[name]
    pca = PCA(n_components=1).fit(Y)
    ae = LinearAutoencoder(2, 1, lr=1e-2, seed=args.seed)
    Trainer(
        max_epochs=None,
        max_steps=ae_steps,
        batch_size=None,  # full batch: the exact gradient of the mean error
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    ).fit(ae, Y)
    ae = ae.cpu().eval()
    W, b = ae.weight.detach(), ae.bias.detach()
    U, V = ae.components(), pca.components_.to(W.dtype)  # orthonormal bases (1, 2)
    # the largest principal angle from its sine, ‖(I − VᵀV)Uᵀ‖₂ (acos of a cosine near 1 would
    # stop at float32's resolution, about 0.02°)
    U, V = U.double(), V.double()
    sine = torch.linalg.matrix_norm((torch.eye(2, dtype=U.dtype) - V.T @ V) @ U.T, ord=2)
    angle = math.degrees(math.asin(min(float(sine), 1.0)))
    offset = (pca.mean_.double() - b.double()) @ (torch.eye(2, dtype=U.dtype) - U.T @ U)
    with torch.no_grad():
        E_ae, _, _ = evaluate_on_grid(ae.energy, xlim, ylim, n_grid)
        ae_energy = float(ae.energy(Y).mean())
    E_pca, _, _ = evaluate_on_grid(pca.energy, xlim, ylim, n_grid)
    lo, hi = colour_ranges[name]["log10_sq_distance"]  # the main figure's scale
    label = "log₁₀ squared distance\n(the main figure's scale)"
    energy_image(axes[0, col], E_pca.log10(), xlim, ylim, lo, hi, label=label)
    energy_image(axes[1, col], E_ae.log10(), xlim, ylim, lo, hi, label=label)
    results["linear_autoencoder"][name] = {
        "principal_angle_to_pca_degrees": angle,
        "WWt_minus_identity": float((W @ W.T - torch.eye(1)).abs().max()),
        "distance_pca_mean_to_learned_line": float(offset.norm()),
        "mean_energy": ae_energy,
        "pca_mean_energy": float(pca.energy(Y).mean()),
    }
    # a few points and their reconstructions, to show the orthogonal projection
    few = Y[:: max(1, len(Y) // 40)]
    for ax, G in (
        (axes[0, col], pca.inverse_transform(pca.transform(few))),
        (axes[1, col], ae.reconstruct(few).detach()),
    ):
        scatter_data(ax, Y)
        for y, r in zip(few, G):
            ax.plot([y[0], r[0]], [y[1], r[1]], c="w", lw=0.7)
        ax.set(xlabel="y₁", ylabel="y₂", xlim=xlim, ylim=ylim)
    axes[0, col].set_title(f"{name}: PCA, k = 1\nmean E = {float(pca.energy(Y).mean()):.4f}")
    axes[1, col].set_title(
        f"{name}: linear autoencoder b + WᵀW(y − b), {ae_steps} Adam steps\n"
        f"mean E = {ae_energy:.4f}, angle to PCA {angle:.2g}°, WWᵀ − 1 = "
        f"{float(W @ W.T) - 1:.1e}"
    )
fig.suptitle(
    "PCA as a tied-weight linear autoencoder: ‖y − G(y)‖² (dark = low; red: data;\n"
    "white: a point and its reconstruction): the trained W is orthonormal and spans PCA's line"
)
save_figure(fig, args.out, "pca_kmeans_energy_autoencoder")
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
print_table(
    "PCA as a linear autoencoder: the trained subspace against PCA's",
    {
        name: {
            "angle (deg)": r["principal_angle_to_pca_degrees"],
            "max|WWᵀ − I|": r["WWt_minus_identity"],
            "mean to line": r["distance_pca_mean_to_learned_line"],
            "AE mean E": r["mean_energy"],
            "PCA mean E": r["pca_mean_energy"],
        }
        for name, r in results["linear_autoencoder"].items()
        if name in datasets
    },
    header="data",
)
