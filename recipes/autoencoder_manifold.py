"""Autoencoders whose reconstruction error is the energy, E(y) = ‖y − G(y)‖² (notes ch. 20):
the denoising autoencoder (trained to undo noise) and the contractive one (penalised by
‖∂h/∂y‖²_F), on 2-D data near curves (the parabola y₂ = y₁², two moons), plus a denoising strip on the 8×8 digits.

For each model: the energy heat map, the reconstruction field G(y) − y, and trajectories of
dy/dt = G(y) − y (torchdiffeq), which carry points from off the manifold onto it. Then the DAE's
failure mode (fig. 19.2b): iterated reconstructions from far off a thin spiral, with small and
large training noise (autoencoder_manifold_dae_failure.png).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ebm.data import digits, parabola, spiral, two_moons  # noqa: E402
from ebm.inference import flow  # noqa: E402
from ebm.models import ContractiveAutoencoder, DenoisingAutoencoder  # noqa: E402
from ebm.plot import (  # noqa: E402
    energy_image,
    evaluate_on_grid,
    grid_points,
    image_grid,
    robust_range,
    use_style,
)
from ebm.recipe import parse_args, print_table, save_figure, write_results  # noqa: E402
from ebm.train import Trainer  # noqa: E402

args = parse_args(__doc__)
use_style()
epochs = 8 if args.quick else 60
n_points = 1000 if args.quick else 4000
torch.manual_seed(args.seed)  # the recipe owns its process: seeds the network initialisations

# ---- data: the notes' parabola y₂ = y₁² and two moons ---------------------------------------
datasets = {
    "parabola": parabola(n_points, noise=0.03, generator=torch.Generator().manual_seed(args.seed)),
    "moons": two_moons(n_points, noise=0.04, generator=torch.Generator().manual_seed(args.seed)),
}
boxes = {"parabola": ((-2, 2), (-0.7, 2.8)), "moons": ((-1.6, 2.6), (-1.1, 1.6))}


def build(name: str, kind: str):
    if kind == "DAE":  # noise well below the gap between the moons, or they blur together
        sigma = 0.15 if name == "parabola" else 0.1
        return DenoisingAutoencoder.mlp(2, (128, 128), 2, sigma=sigma, lr=3e-3)
    # a 1-D code plus the Jacobian penalty: the code can only follow a 1-D curve (the parabola;
    # two separate moons would need a code that jumps between them)
    return ContractiveAutoencoder.mlp(2, (128, 128), 1, jacobian_weight=1e-3, lr=3e-3)


# ---- train the autoencoders through the shared Trainer ---------------------------------------
models, results = {}, {}
for name, kind in [("parabola", "DAE"), ("parabola", "CAE"), ("moons", "DAE")]:
    model = build(name, kind)
    n_epochs = epochs if name == "parabola" else 2 * epochs  # two curves: harder to fit
    trainer = Trainer(
        max_epochs=n_epochs,
        batch_size=128,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
    )
    trainer.fit(model, datasets[name])
    models[name, kind] = model.eval()
    results[f"{name}_{kind}_final_loss"] = trainer.history[-1]["loss"]

# ---- figure: energy with the reconstruction field, and the flow onto the manifold ------------
# Models of the same data share one colour scale (log₁₀ energy, clipped below at the 1st
# percentile) and one arrow scale (the longest arrow of either drawn 1.5 grid cells long).
# The sharp check of "low energy only on the data": the share of the box's area farther than
# OFF_DATA from every training point whose energy is below the 90th percentile of the energy on
# the training points (the notes' catastrophic case is a low-energy valley off the data).
OFF_DATA, N_GRID, N_ARROWS = 0.25, 150, 13
fields, log_energy, off_low = {}, {}, {}
for (name, kind), model in models.items():
    xlim, ylim = boxes[name]
    Y = datasets[name]
    device = next(model.parameters()).device
    E, X1, X2 = evaluate_on_grid(model.energy, xlim, ylim, n=N_GRID, device=device)
    log_energy[name, kind] = E.log10()
    with torch.no_grad():
        points, _, _ = grid_points(xlim, ylim, N_ARROWS)
        fields[name, kind] = (points, model.field(points.to(device)).cpu())
        grid = torch.stack([X1.flatten(), X2.flatten()], 1)
        distance = torch.cat([torch.cdist(g, Y).min(1).values for g in grid.split(2048)])
        level = model.energy(Y.to(device)).cpu().quantile(0.9)
    off = (distance > OFF_DATA).reshape(E.shape)
    low_off = off & (E <= level)
    off_low[name, kind] = (low_off, X1, X2)
    results[f"{name}_{kind}_energy_q90_on_data"] = level.item()
    results[f"{name}_{kind}_off_data_area_fraction"] = off.float().mean().item()
    results[f"{name}_{kind}_low_energy_fraction_of_off_data_area"] = (
        low_off.sum() / off.sum()
    ).item()
    results[f"{name}_{kind}_min_energy_off_data_over_median_on_data"] = (
        E[off].min() / model.energy(Y.to(device)).detach().cpu().median()
    ).item()
colour_range = {
    name: robust_range(*[v for (d, _), v in log_energy.items() if d == name], lower=0.01, upper=1.0)
    for name in datasets
}
arrow_scale = {
    name: max(a.norm(dim=1).max().item() for (d, _), (_, a) in fields.items() if d == name)
    / (1.5 * (boxes[name][0][1] - boxes[name][0][0]) / (N_ARROWS - 1))
    for name in datasets
}
fig, axes = plt.subplots(3, 2, figsize=(10, 14.5), layout="constrained")
for row, ((name, kind), model) in enumerate(models.items()):
    Y = datasets[name]
    xlim, ylim = boxes[name]
    device = next(model.parameters()).device
    ax = axes[row, 0]
    energy_image(
        ax,
        log_energy[name, kind],
        xlim,
        ylim,
        *colour_range[name],
        label="log₁₀ ‖y − G(y)‖²\n(clipped below at the 1st percentile)",
    )
    ax.scatter(Y[:, 0], Y[:, 1], s=2, c="r", alpha=0.5, linewidths=0)
    points, arrows = fields[name, kind]
    scale = arrow_scale[name]
    ax.quiver(
        points[:, 0],
        points[:, 1],
        arrows[:, 0],
        arrows[:, 1],
        angles="xy",
        scale_units="xy",
        scale=scale,
        width=0.006,
        color="w",
    )
    low_off, X1, X2 = off_low[name, kind]
    if low_off.any():  # outline the low-energy area off the data
        ax.contour(X1, X2, low_off.float(), levels=[0.5], colors="magenta", linewidths=1.8)
    share = results[f"{name}_{kind}_low_energy_fraction_of_off_data_area"]
    ratio = results[f"{name}_{kind}_min_energy_off_data_over_median_on_data"]
    ax.set_title(
        f"{kind}, {name}: energy, field G(y) − y (×{1 / scale:.2g})\n"
        f"off the data: {100 * share:.1f} % of the area low; min E {ratio:.2g} × data median"
    )

    # dy/dt = G(y) − y from a coarse grid of starting points
    starts, _, _ = grid_points(xlim, ylim, 9)
    times = torch.linspace(0, 8, 40)
    with torch.no_grad():
        path = flow(model.field, starts.to(device), times.to(device)).cpu()  # (T, B, 2)
    ax = axes[row, 1]
    ax.scatter(Y[:, 0], Y[:, 1], s=2, c="0.7")
    ax.plot(path[:, :, 0], path[:, :, 1], c="C1", lw=0.8)
    ax.scatter(path[0, :, 0], path[0, :, 1], s=10, c="C1", label="start")
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=14, c="k", label="y(8)")
    stranded = int((torch.cdist(path[-1], Y).min(1).values > OFF_DATA).sum())
    results[f"{name}_{kind}_flow_ends_off_data"] = stranded
    results[f"{name}_{kind}_flow_starts"] = path.shape[1]
    ax.set(
        xlim=xlim,
        ylim=ylim,
        title=f"{kind}, {name}: flow dy/dt = G(y) − y, t ∈ [0, 8]\n"
        f"{stranded} of {path.shape[1]} ends farther than {OFF_DATA} from the data",
    )
    ax.legend(loc="upper right")
    for ax in axes[row]:
        ax.set(xlabel="y₁", ylabel="y₂")

    with torch.no_grad():
        energy_on = model.energy(Y.to(device)).mean().item()
        off = Y + 0.1 * torch.randn(Y.shape, generator=torch.Generator().manual_seed(1))
        energy_off = model.energy(off.to(device)).mean().item()
    results[f"{name}_{kind}_energy_on_data"] = energy_on
    results[f"{name}_{kind}_energy_off_data_0.1"] = energy_off
    if name == "parabola":  # distance to y₂ = y₁² before and after the flow
        gap = lambda y: (y[:, 1] - y[:, 0] ** 2).abs().mean().item()  # noqa: E731
        results[f"parabola_{kind}_manifold_gap_start"] = gap(path[0])
        results[f"parabola_{kind}_manifold_gap_end"] = gap(path[-1])
fig.suptitle(
    "Reconstruction error as the energy (dark = low; red/grey: data; white: the field G(y) − y)\n"
    f"magenta: energy below the data's 90th percentile farther than {OFF_DATA} from every "
    "training point"
)
save_figure(fig, args.out, "autoencoder_manifold")

# ---- a denoising autoencoder on the digits: noisy, reconstructed, clean ----------------------
train_images, _ = digits("train", generator=torch.Generator().manual_seed(args.seed))
test_images, _ = digits("test", generator=torch.Generator().manual_seed(args.seed))
encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.SiLU(), nn.Linear(256, 32))
decoder = nn.Sequential(
    nn.Linear(32, 256), nn.SiLU(), nn.Linear(256, 64), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8))
)
dae = DenoisingAutoencoder(encoder, decoder, noise="gaussian", sigma=0.3, lr=2e-3)
Trainer(
    max_epochs=15 if args.quick else 150,
    batch_size=64,
    seed=args.seed,
    device=args.device,
    precision=args.precision,
).fit(dae, train_images)
dae.eval()
clean = test_images[:12]
noisy = clean + 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
device = next(dae.parameters()).device
with torch.no_grad():
    restored = dae.reconstruct(noisy.to(device)).cpu()
fig, ax = plt.subplots(figsize=(10, 3))
image_grid(
    ax,
    torch.cat([noisy.clamp(0, 1), restored, clean]),
    nrow=12,
    title="digits: noisy (σ = 0.3) / reconstructed G(ỹ) / clean",
)
save_figure(fig, args.out, "autoencoder_manifold_digits")
results["digits_mse_noisy"] = (noisy - clean).square().mean().item()
results["digits_mse_reconstructed"] = (restored - clean).square().mean().item()

# ---- the DAE's failure mode (notes fig. 19.2b, a sketch): "the points reconstructed go in circles"
# Nothing trains G far from the data beyond the noise scale σ. On a thin three-armed spiral, a DAE
# trained with σ = 0.05 is left free there; one trained with σ = 0.3 saw corrupted points out to
# the box's middle. From a grid of starts farther than FAR from every data point we iterate
# y ← G(y) (N_ITER reconstructions) and count where the iterates end: within NEAR of the data,
# escaped (‖y‖ > ESCAPE, frozen there), or stranded off the data (a spurious attractor or still
# wandering); and the share of far grid points whose field G(y) − y points away from the nearest
# data point (cosine < 0). A reconstruction field that pointed at the data would give 1, 0, 0, 0.
FAR, NEAR, ESCAPE, N_ITER = 0.5, 0.1, 10.0, 200
thin_spiral = spiral(
    300 if args.quick else 1000, noise=0.02, generator=torch.Generator().manual_seed(args.seed)
)[0]
spiral_box = ((-2.5, 2.5), (-2.5, 2.5))
fig, axes = plt.subplots(2, 2, figsize=(10, 10), layout="constrained")
results["spiral_DAE_iterated"] = {
    "far": FAR,
    "near": NEAR,
    "escape_norm": ESCAPE,
    "n_iterations": N_ITER,
}
N_INITS = 1 if args.quick else 3  # the failure depends on the initialisation: several are run


def iterate_reconstructions(model, starts):
    """y ← G(y) N_ITER times from starts (B, 2); a point past ESCAPE is frozen. (N_ITER + 1, B, 2)"""
    y, path = starts, [starts]
    for _ in range(N_ITER):
        y = torch.where(y.norm(dim=1, keepdim=True) > ESCAPE, y, model.reconstruct(y))
        path.append(y)
    return torch.stack(path)


starts, _, _ = grid_points(*spiral_box, 21)
starts = starts[torch.cdist(starts, thin_spiral).min(1).values > FAR]
nearest = thin_spiral[torch.cdist(starts, thin_spiral).argmin(1)]
arrows_at, _, _ = grid_points(*spiral_box, 17)
for row, sigma in enumerate((0.05, 0.3)):
    runs = []
    for init in range(N_INITS):
        torch.manual_seed(args.seed + init)  # the network's initialisation
        dae_s = DenoisingAutoencoder.mlp(2, (128, 128), 2, sigma=sigma, lr=3e-3)
        Trainer(
            max_epochs=10 if args.quick else 30,
            batch_size=128,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
        ).fit(dae_s, thin_spiral)
        dae_s = dae_s.cpu().eval()
        with torch.no_grad():
            path = iterate_reconstructions(dae_s, starts)
            cosine = nn.functional.cosine_similarity(dae_s.field(starts), nearest - starts, dim=1)
        reached = torch.cdist(path[-1], thin_spiral).min(1).values <= NEAR
        escaped = path[-1].norm(dim=1) > ESCAPE
        runs.append(
            {
                "reach_data": reached.float().mean().item(),
                "escape": escaped.float().mean().item(),
                "stranded_off_data": (~reached & ~escaped).float().mean().item(),
                "field_points_away_from_nearest_data": (cosine < 0).float().mean().item(),
                "mean_cosine_field_to_nearest_data": cosine.mean().item(),
                # a projection onto the data would end near the start's nearest data point, at
                # as many places as there are starts; collapse ends them all at a few points
                "median_end_to_start_nearest_data": (path[-1] - nearest)
                .norm(dim=1)
                .median()
                .item(),
                "distinct_end_points": len(torch.unique((path[-1] / NEAR).round(), dim=0)),
            }
        )
        if init == 0:  # the figure shows the first initialisation
            shown_path = path
            with torch.no_grad():
                arrows = dae_s.field(arrows_at)
    key = f"sigma_{sigma:g}"
    results["spiral_DAE_iterated"][key] = {"sigma": sigma, "far_starts": len(starts)} | {
        name: [run[name] for run in runs] for name in runs[0]
    }
    path = shown_path
    r = {
        k: v[0] if isinstance(v, list) else v
        for k, v in results["spiral_DAE_iterated"][key].items()
    }
    ax = axes[row, 0]
    ax.scatter(thin_spiral[:, 0], thin_spiral[:, 1], s=2, c="r", linewidths=0)
    unit = arrows / arrows.norm(dim=1, keepdim=True).clamp(min=1e-12)
    ax.quiver(arrows_at[:, 0], arrows_at[:, 1], unit[:, 0], unit[:, 1], angles="xy", width=0.004)
    ax.set_title(
        f"DAE, σ = {sigma:g} (init 1 of {N_INITS}): direction of G(y) − y\n"
        f"{100 * r['field_points_away_from_nearest_data']:.0f} % of far points: away from the "
        "nearest data"
    )
    ax = axes[row, 1]
    ax.scatter(thin_spiral[:, 0], thin_spiral[:, 1], s=2, c="0.6", linewidths=0)
    ax.plot(path[:, :, 0], path[:, :, 1], c="C1", lw=0.5)
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=8, c="k", zorder=3, label=f"y after {N_ITER}")
    ax.set_title(
        f"DAE, σ = {sigma:g} (init 1 of {N_INITS}): y ← G(y), {len(starts)} starts > {FAR} off\n"
        f"reach the data {100 * r['reach_data']:.0f} %, escape {100 * r['escape']:.0f} %, "
        f"stranded {100 * r['stranded_off_data']:.0f} %\nends in {r['distinct_end_points']} "
        f"cells of side {NEAR}, median {r['median_end_to_start_nearest_data']:.2f} from the "
        "start's nearest data",
        fontsize=9,
    )
    ax.legend(loc="upper right")
    for ax in axes[row]:
        ax.set(xlim=spiral_box[0], ylim=spiral_box[1], xlabel="y₁", ylabel="y₂", aspect="equal")
fig.suptitle(
    "The DAE's failure mode (notes fig. 19.2b): far from the data, where no corrupted point\n"
    "landed, G is unconstrained; iterated reconstructions strand off the spiral or collapse"
)
save_figure(fig, args.out, "autoencoder_manifold_dae_failure")

write_results(args.out, "autoencoder_manifold", results)
print_table(
    "autoencoders: energy ‖y − G(y)‖² on the data and 0.1 off it; flow onto y₂ = y₁²",
    {
        f"{name} {kind}": {
            "final loss": results[f"{name}_{kind}_final_loss"],
            "E on data": results[f"{name}_{kind}_energy_on_data"],
            "E off (0.1)": results[f"{name}_{kind}_energy_off_data_0.1"],
            f"low E >{OFF_DATA} off": results[
                f"{name}_{kind}_low_energy_fraction_of_off_data_area"
            ],
            "min E off / median on": results[
                f"{name}_{kind}_min_energy_off_data_over_median_on_data"
            ],
            "flow ends off": results[f"{name}_{kind}_flow_ends_off_data"],
            "gap before flow": results.get(f"{name}_{kind}_manifold_gap_start"),
            "gap after flow": results.get(f"{name}_{kind}_manifold_gap_end"),
        }
        for name, kind in models
    },
    header="model",
)
print_table(
    "digits, denoising autoencoder (σ = 0.3): MSE to the clean digits",
    {"noisy": results["digits_mse_noisy"], "reconstructed": results["digits_mse_reconstructed"]},
)
print_table(
    f"DAE on a thin spiral: y ← G(y) {N_ITER} times from starts > {FAR} off the data",
    {
        f"σ = {r['sigma']:g}, init {i + 1}": {
            "reach data": r["reach_data"][i],
            "escape": r["escape"][i],
            "stranded off": r["stranded_off_data"][i],
            "field points away": r["field_points_away_from_nearest_data"][i],
            "end cells": r["distinct_end_points"][i],
            "end to start's nearest": r["median_end_to_start_nearest_data"][i],
        }
        for key, r in results["spiral_DAE_iterated"].items()
        if key.startswith("sigma_")
        for i in range(N_INITS)
    },
    header="noise",
)
