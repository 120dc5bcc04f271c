"""The notes' latent-variable ellipse: E(y, z) = (y₁ − w₁ cos z)² + (y₂ − w₂ sin z)², z on a grid
of 48 angles over [0, 2π), w learned from 24 noisy points of the ellipse with radii ρ(0) = (2, 1.5).

Zero-temperature training minimises the mean free energy F∞(y) = min_z E(y, z) over w (the energy
loss on the free energy): the one-dimensional latent limits the low-energy set to a curve, so
nothing needs pushing up. Also trained at finite β (marginalising z). Figures: E(y, z) against z
for all 24 samples with ž marked, F∞ over y with its gradient field, cross-sections of F_β, the
path of w, and (``ellipse_latent_flow``) trajectories of dy/dt = −∇F∞ landing on the ellipse.

    python recipes/ellipse_latent.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import math

import matplotlib.pyplot as plt
import torch

from ebm.data import ellipse
from ebm.data.latent_toys import radii
from ebm.inference import gradient_flow
from ebm.latent import EllipseEnergy
from ebm.plot import energy_image, evaluate_on_grid, grid_points, use_style
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()

# ---- data: 24 points of the ellipse at x = 0, radii ρ(0) = [β, α] = [2, 1.5] --------------------
y, theta = ellipse(
    n=24,
    x=0.0,
    alpha=1.5,
    beta=2.0,
    noise=1 / 20,
    generator=torch.Generator().manual_seed(args.seed),
)
w_true = radii(0.0)  # (2, 1.5): w₁ is the radius along y₁, w₂ along y₂


# ---- models: w starts on the unit circle; trained at zero and at finite temperature -------------
def fit(beta, n_z=48):
    model = EllipseEnergy(w=(1.0, 1.0), n_z=n_z, beta=beta, lr=0.05)
    trainer = Trainer(
        max_epochs=150 if args.quick else 400,
        batch_size=None,  # the 24 samples are one batch
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, y)
    steps = [row for row in trainer.history if "w1" in row]
    return model.cpu().eval(), torch.tensor([[r["w1"], r["w2"]] for r in steps])


BETAS = [math.inf, 10.0, 1.0]
models, w_paths = {}, {}
for beta in BETAS:
    models[beta], w_paths[beta] = fit(beta)
model = models[math.inf]
w_learned = model.w.detach()
# the same data on a 720-angle grid: how much of w's offset at β = ∞ is the 48-angle grid's
w_fine_grid = fit(math.inf, n_z=720)[0].w.detach()

# F∞ is drawn on a log scale, clipped below at 10⁻² (it is 0 on the learned curve itself), so the
# ellipse's thin valley stands out from the inside (F∞ ≈ 2 at the centre) as well as the outside
FLOOR, LOG_F_MAX = 1e-2, 1.0
LOG_F_LABEL = "log₁₀ F∞(y), clipped at 10⁻²"
PI_TICKS = [0, math.pi / 2, math.pi, 3 * math.pi / 2, 2 * math.pi]
PI_LABELS = ["0", "π/2", "π", "3π/2", "2π"]

# ---- panel 1: E(y_i, z) against z for all 24 samples, ž marked -----------------------------------
with torch.no_grad():
    z_fine = torch.linspace(0, 2 * math.pi, 400)[:, None]
    curves = model.grid_energies(y, z=z_fine)  # (24, 400); colour = the true angle θ
    inferred = model.free_energy(y)
fig, axes = plt.subplots(2, 2, figsize=(11, 9.5), layout="constrained")
ax = axes[0, 0]
colors = plt.cm.hsv(theta.numpy() / (2 * math.pi))
for i in range(len(y)):
    ax.plot(z_fine[:, 0], curves[i], color=colors[i], lw=0.8, alpha=0.8)
    ax.plot(inferred.z[i, 0], inferred.free_energy[i], "o", color=colors[i], mec="k", ms=5)
ax.set(xlabel="latent z (rad)", ylabel="E(y_i, z)", title="E(y_i, z) of the 24 samples; dots: ž_i")
ax.set_xticks(PI_TICKS, PI_LABELS)
angle_bar = fig.colorbar(
    plt.cm.ScalarMappable(plt.Normalize(0, 2 * math.pi), "hsv"), ax=ax, fraction=0.046, pad=0.04
)
angle_bar.set_ticks(PI_TICKS, labels=PI_LABELS)
angle_bar.set_label("true angle θ_i of the sample (rad)")

# ---- panel 2: F∞ over y with its gradient field ---------------------------------------------------
box = dict(xlim=(-3.0, 3.0), ylim=(-3.0, 3.0))
ax = axes[0, 1]
F_grid, X, Y = evaluate_on_grid(model, **box, n=120 if args.quick else 200)
log_F = F_grid.log10()  # −inf where F∞ = 0: drawn in the bottom colour, the colourbar says so
energy_image(ax, log_F, **box, vmin=math.log10(FLOOR), vmax=LOG_F_MAX, label=LOG_F_LABEL)
levels = [-1.0, -0.5, 0.0, 0.5]
ax.contour(X, Y, log_F, levels=levels, colors="w", linewidths=0.5, linestyles="solid")
ax.set(title="F∞(y) and −∇F∞ (arrows); dashed: learned ellipse", xlabel="y₁", ylabel="y₂")
arrows, X, Y = grid_points(**box, n=17)
field = model.score(arrows)  # −∇F∞ = −∂E/∂y at ž (envelope theorem)
ax.quiver(X, Y, field[:, 0].reshape(17, 17), field[:, 1].reshape(17, 17), color="w", alpha=0.7)
on_curve = model.decode(z_fine).detach()
ax.plot(on_curve[:, 0], on_curve[:, 1], "w--", lw=1)
ax.scatter(y[:, 0], y[:, 1], c="r", s=12, zorder=3)
ax.set_aspect("equal")

# ---- panel 3: cross-sections of F_β along y₂ = 0 --------------------------------------------------
ax = axes[1, 0]
line = torch.stack([torch.linspace(-3, 3, 301), torch.zeros(301)], 1)
cross_section_minima = {}
with torch.no_grad():  # F_β = −(1/β) log Σ_z exp(−βE) over the 48 angles (the library's F)
    for beta in [math.inf, 10.0, 3.0, 1.0, 0.3, 0.1]:
        F = model.free_energy(line, beta=beta).free_energy
        name = f"β = {beta:g}" if math.isfinite(beta) else "β = ∞ (min)"
        cross_section_minima[f"{beta:g}"] = F.min().item()
        ax.plot(line[:, 0], F - F.min(), label=f"{name}: min F_β {F.min():.2f}")
ax.set(
    xlabel="y₁ (on the line y₂ = 0)",
    ylabel="F_β(y) − its minimum on the line",
    title="cross-sections of F_β = −(1/β) log Σ_z exp(−βE)",
)
ax.legend(fontsize=8)

# ---- panel 4: w during training -------------------------------------------------------------------
ax = axes[1, 1]
for beta, path in w_paths.items():
    label = "β = ∞" if math.isinf(beta) else f"β = {beta:g}"
    final = models[beta].w.detach()  # the trained w (the path logs w before each step)
    path = torch.cat([path, final[None]])
    ax.plot(
        path[:, 0],
        path[:, 1],
        "-",
        lw=1.2,
        label=f"{label}: w → ({final[0]:.2f}, {final[1]:.2f})",
    )
ax.plot(*w_true, "k*", ms=14, label="ρ(0) = (2, 1.5)")
ax.plot(1.0, 1.0, "ko", mfc="none", label="start (1, 1)")
ax.set(xlabel="w₁", ylabel="w₂", title="w learned from the 24 samples")
ax.legend(fontsize=8)
save_figure(fig, args.out, "ellipse_latent")

# ---- gradient flow dy/dt = −∇F∞, with ž searched on a fine grid of 720 angles (smooth field) -----
flow_model = EllipseEnergy(w=tuple(w_learned.tolist()), n_z=720).eval()
angles = torch.linspace(0, 2 * math.pi, 25)[:-1]
starts = torch.cat(
    [r * torch.stack([angles.cos(), angles.sin()], 1) for r in (0.4, 3.2)]
    + [torch.tensor([[3.0, 3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]])]
)
t = torch.linspace(0, 2.0, 41)
paths = gradient_flow(flow_model, starts, t, method="rk4", options={"step_size": 0.025})
with torch.no_grad():
    F_path = flow_model(paths.reshape(-1, 2)).reshape(len(t), -1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
ax = axes[0]
F_grid, _, _ = evaluate_on_grid(flow_model, **box, n=100 if args.quick else 200)
energy_image(
    ax,
    F_grid.log10(),
    **box,
    vmin=math.log10(FLOOR),
    vmax=LOG_F_MAX,
    label=f"{LOG_F_LABEL}\n(720-angle grid)",
)
for k in range(starts.shape[0]):
    ax.plot(paths[:, k, 0], paths[:, k, 1], "w-", lw=0.8)
ax.plot(paths[-1, :, 0], paths[-1, :, 1], "r.", ms=6)
ax.plot(on_curve[:, 0], on_curve[:, 1], "c--", lw=1)
ax.set(title="dy/dt = −∇F∞(y) from 52 starts (red: y(2))", xlabel="y₁", ylabel="y₂")
ax.set_aspect("equal")
ax = axes[1]
ax.semilogy(t, F_path.clamp_min(1e-12), color="C0", alpha=0.5, lw=0.8)
ax.set(
    xlabel="time t",
    ylabel="F∞(y(t)) (log scale)",
    title="F∞ falls along every trajectory (∝ exp(−4t) near the curve)",
)
save_figure(fig, args.out, "ellipse_latent_flow")

# ---- key numbers ------------------------------------------------------------------------------
angle_error = torch.remainder(inferred.z[:, 0] - theta + math.pi, 2 * math.pi) - math.pi
write_results(
    args.out,
    "ellipse_latent",
    {
        "w_true": w_true,
        "w_learned": {
            ("inf" if math.isinf(b) else f"{b:g}"): m.w.detach() for b, m in models.items()
        },
        "w_error_zero_temperature": (w_learned - w_true).abs().max().item(),
        "w_learned_720_angles_zero_temperature": w_fine_grid,
        "zhat_minus_theta_max_abs": angle_error.abs().max().item(),
        "mean_F_inf_train": inferred.free_energy.mean().item(),
        "flow_final_F_inf_max": F_path[-1].max().item(),
        "flow_F_monotone": bool((F_path[1:] <= F_path[:-1] + 1e-5).all()),
        "cross_section_min_F_beta": cross_section_minima,
    },
)
print_table(
    "ellipse: learned radii w (true (2, 1.5)) and zero-temperature inference",
    {
        ("β = ∞" if math.isinf(b) else f"β = {b:g}"): m.w.detach().flatten()
        for b, m in models.items()
    },
)
print_table(
    "inference and flow",
    {
        "max |ž − θ| (rad)": angle_error.abs().max(),
        "mean F∞ on the training points": inferred.free_energy.mean(),
        "max F∞ at the end of the flow": F_path[-1].max(),
        "F∞ falls along every flow": bool((F_path[1:] <= F_path[:-1] + 1e-5).all()),
    },
)
