"""The notes' conditional horn: E(x, y, z) = (y₁ − f₁(x) cos z)² + (y₂ − f₂(x) sin z)², with f a
1 → 8 → 8 → 2 ReLU net, g(z) = (cos z, sin z) and z on a grid of 48 angles over [0, 2π).

For each input x ~ U(0, 1) the data lie on an ellipse with radii ρ(x) = [αx + β(1 − x),
βx + α(1 − x)]·exp(2x); stacked over x they form a horn. The model is trained at zero temperature
(mean F∞ = min_z E) and with marginalisation (mean F_β, β = 1). Held-out points on the horn should
get a much lower free energy than points off it: the same points with radii scaled by 0.7 or 1.3,
and points paired with the wrong input x.

The first layer's ReLU kinks are placed evenly over the inputs' range [0, 1]. With PyTorch's
default initialisation (weights and biases uniform on [−1, 1] for one input) most kinks −b/w fall
outside [0, 1], and a unit whose active side faces away from [0, 1] never fires on the data and
gets no gradient: f is then piecewise linear with one or two pieces only, and constant wherever
no first-layer unit is active. The recipe also trains that default initialisation once (β = ∞)
to show the difference.

    python recipes/horn_latent.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import copy
import math

import matplotlib.pyplot as plt
import torch

from ebm.data import horn
from ebm.data.latent_toys import radii
from ebm.latent import HornEnergy
from ebm.plot import energy_image, evaluate_on_grid
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
torch.manual_seed(args.seed)  # parameter initialisation (a script may seed the global RNG)

# ---- data: training horn and a held-out draw ---------------------------------------------------
x, y, _ = horn(384 if args.quick else 2000, generator=torch.Generator().manual_seed(args.seed))
x_test, y_test, _ = horn(
    256 if args.quick else 1000, generator=torch.Generator().manual_seed(args.seed + 1)
)


# ---- models: one initialisation, trained at zero temperature and at β = 1 ------------------------
@torch.no_grad()
def spread_kinks(layer: torch.nn.Linear, low: float = 0.0, high: float = 1.0) -> None:
    """Put the kinks −b/w of a 1-input ReLU layer evenly inside [low, high], facing alternately
    right (w > 0: active above the kink) and left (w < 0: active below), |w| = 2/(high − low)."""
    n = layer.out_features
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2 + 1)[:n]
    kinks = low + (high - low) * (torch.arange(n) + 0.5) / n
    layer.weight.copy_((2.0 / (high - low) * sign)[:, None])
    layer.bias.copy_(-layer.weight[:, 0] * kinks)


def units_active_on_data(model) -> int:
    """How many first-layer units fire for some x in [0, 1] (the others get no gradient)."""
    with torch.no_grad():
        hidden = model.f[0](torch.linspace(0, 1, 1001)[:, None])
    return int((hidden > 0).any(0).sum())


BETA = 1.0
default_init = HornEnergy(hidden=(8, 8), n_z=48, lr=3e-2)  # PyTorch's default initialisation
initial = copy.deepcopy(default_init)
spread_kinks(initial.f[0])


def fit(start, beta):
    model = copy.deepcopy(start)
    model.beta = beta
    trainer = Trainer(
        max_epochs=150 if args.quick else 400,
        batch_size=128,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(model, (x, y))
    return model.cpu().eval(), trainer.history


LABELS = {
    "before": "before training",
    "zero_temperature": "trained at β = ∞",
    "beta": f"trained at β = {BETA:g}",
}
models = {"before": initial.eval()}
histories = {}
models["zero_temperature"], histories["zero_temperature"] = fit(initial, math.inf)
models["beta"], histories["beta"] = fit(initial, BETA)
default_trained, histories["default_init_zero_temperature"] = fit(default_init, math.inf)


# ---- held-out free energy on and off the manifold -------------------------------------------------
def off_manifold():
    shuffled = x_test[torch.randperm(len(x_test), generator=torch.Generator().manual_seed(0))]
    return {
        "radii x0.7": (x_test, 0.7 * y_test),
        "radii x1.3": (x_test, 1.3 * y_test),
        "wrong x": (shuffled, y_test),
    }


@torch.no_grad()
def evaluate(model, beta=math.inf):
    on = model.free_energy(y_test, x_test, beta).free_energy
    result = {"on_manifold_mean": on.mean(), "on_manifold_median": on.median()}
    for name, (xo, yo) in off_manifold().items():
        off = model.free_energy(yo, xo, beta).free_energy
        result[f"off[{name}]_mean"] = off.mean()
        result[f"off[{name}]_median"] = off.median()
        result[f"off[{name}]_frac_higher"] = (off > on).float().mean()  # per-point ordering
    return result


results = {name: evaluate(model) for name, model in models.items()}
results["beta_evaluated_at_beta"] = evaluate(models["beta"], BETA)
results["default_init_zero_temperature"] = evaluate(default_trained)

# ---- learned radii |f(x)| against ρ(x) -----------------------------------------------------------
grid_x = torch.linspace(0, 1, 201)[:, None]
truth = radii(grid_x[:, 0])
learned = {name: model.f(grid_x).detach().abs() for name, model in models.items()}
learned["default_init_zero_temperature"] = default_trained.f(grid_x).detach().abs()
low_x = grid_x[:, 0] <= 0.2
radius_error = {
    name: {
        "max_abs_x_in_0_1": (f - truth).abs().max(),
        "max_abs_x_in_0_0.2": (f[low_x] - truth[low_x]).abs().max(),
    }
    for name, f in learned.items()
}
moved = (
    learned["default_init_zero_temperature"] - learned["default_init_zero_temperature"][0]
).abs()
flat_up_to = grid_x[moved.amax(1) > 1e-6][0, 0]  # f is constant on [0, flat_up_to)
active_units = {
    "spread_kinks_before": units_active_on_data(initial),
    "zero_temperature": units_active_on_data(models["zero_temperature"]),
    "beta": units_active_on_data(models["beta"]),
    "default_init_before": units_active_on_data(default_init),
    "default_init_zero_temperature": units_active_on_data(default_trained),
}

# ---- figure 1: F∞(y | x) for three inputs, before and after training, on one colour scale ------
X_SHOWN = (0.1, 0.5, 0.9)
FLOOR = 1e-2  # log₁₀ F∞ is clipped below at 10⁻²: F∞ = 0 on the learned curve itself
n_grid = 80 if args.quick else 160
angles = torch.linspace(0, 2 * math.pi, 200)[:, None]
panels = {}
for col, xv in enumerate(X_SHOWN):
    lim = 1.35 * radii(xv).max().item()
    cond = torch.full((1, 1), xv)
    for row, model in enumerate(models.values()):
        F, _, _ = evaluate_on_grid(
            lambda p, c=cond, m=model: m.free_energy(p, c.expand(len(p), 1)).free_energy,
            (-lim, lim),
            (-lim, lim),
            n=n_grid,
        )
        panels[row, col] = (F.clamp_min(FLOOR).log10(), lim)
vmax = max(shown.max().item() for shown, _ in panels.values())

fig, axes = plt.subplots(3, 3, figsize=(11, 10.5), layout="constrained")
for (row, col), (shown, lim) in panels.items():
    name, model, xv = list(models)[row], list(models.values())[row], X_SHOWN[col]
    ax = axes[row, col]
    image = energy_image(
        ax, shown, (-lim, lim), (-lim, lim), vmin=math.log10(FLOOR), vmax=vmax, colorbar=False
    )
    cond = torch.full((len(angles), 1), xv)
    with torch.no_grad():
        curve = model.decode(angles, cond)
    ax.plot(curve[:, 0], curve[:, 1], "w--", lw=1)
    near = (x[:, 0] - xv).abs() < 0.04
    ax.scatter(y[near, 0], y[near, 1], c="r", s=6, zorder=3)
    ax.set_aspect("equal")
    if row == 0:
        rho = radii(xv)
        ax.set_title(f"x = {xv}: ρ(x) = ({rho[0]:.2f}, {rho[1]:.2f})")
    if col == 0:
        ax.set_ylabel(f"{LABELS[name]}\ny₂")
    if row == 2:
        ax.set_xlabel("y₁")
fig.colorbar(image, ax=axes, shrink=0.6, extend="min", label="log₁₀ F∞(y | x), clipped at 10⁻²")
fig.suptitle(
    "The conditional horn: F∞(y | x) = min_z E(x, y, z) for three inputs x (dark = low)\n"
    "dashed: the learned ellipse f(x)·(cos z, sin z); red: training points with |x − x₀| < 0.04"
)
save_figure(fig, args.out, "horn_latent")

# ---- figure 2: learned radii against ρ(x), and their errors ----------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True, layout="constrained")
ax = axes[0]
ax.plot(grid_x, truth[:, 0], "k-", lw=2.5, label="true ρ₁(x)")
ax.plot(grid_x, truth[:, 1], "k--", lw=2.5, label="true ρ₂(x)")
curves = [
    ("zero_temperature", "C1", "β = ∞"),
    ("beta", "C2", f"β = {BETA:g}"),
    ("default_init_zero_temperature", "C7", "β = ∞, default init"),
]
for name, color, label in curves:
    f = learned[name]
    ax.plot(grid_x, f[:, 0], "-", color=color, lw=1.3, label=f"|f₁|, {label}")
    ax.plot(grid_x, f[:, 1], "--", color=color, lw=1.3, label=f"|f₂|, {label}")
    axes[1].plot(grid_x, f[:, 0] - truth[:, 0], "-", color=color, lw=1.3)
    axes[1].plot(grid_x, f[:, 1] - truth[:, 1], "--", color=color, lw=1.3)
ax.set(xlabel="input x", ylabel="radius (units of y)", title="learned radii |f(x)| and ρ(x)")
ax.legend(fontsize=8)
axes[1].axhline(0, color="k", lw=0.8)
axes[1].set(
    xlabel="input x",
    ylabel="|f(x)| − ρ(x) (units of y)",
    title="radius error (solid: first radius, dashed: second)",
)
alive, width = active_units["default_init_zero_temperature"], initial.f[0].out_features
fig.suptitle(
    f"First-layer kinks spread over [0, 1] (orange, green) vs PyTorch's default init (grey: "
    f"{alive} of {width} units ever active on the data)"
)
save_figure(fig, args.out, "horn_latent_radii")

# ---- figure 3: held-out free energies on vs off the horn ------------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharex=True, sharey=True, layout="constrained")
bins = torch.logspace(-4, 3, 50)
for ax, name in zip(axes, ["zero_temperature", "beta"]):
    model = models[name]
    with torch.no_grad():
        on = model.free_energy(y_test, x_test).free_energy.clamp_min(1e-4)
        ax.hist(on, bins=bins, alpha=0.7, label="on the horn (held out)")
        for off_name, (xo, yo) in off_manifold().items():
            off = model.free_energy(yo, xo).free_energy.clamp_min(1e-4)
            ax.hist(off, bins=bins, histtype="step", lw=1.5, label=f"off: {off_name}")
    ax.set_xscale("log")
    ax.set(xlabel="F∞(x, y) (values below 10⁻⁴ counted at 10⁻⁴)", title=f"model {LABELS[name]}")
axes[0].set_ylabel("held-out points")
axes[0].legend(fontsize=8)
fig.suptitle("Held-out free energy F∞ = min_z E on the horn and off it")
save_figure(fig, args.out, "horn_latent_eval")

# ---- key numbers ------------------------------------------------------------------------------
write_results(
    args.out,
    "horn_latent",
    {
        "beta_finite": BETA,
        "held_out_F_inf": results,
        "radius_error": radius_error,
        "first_layer_units_active_on_x_in_0_1": active_units,
        "default_init_f_constant_below_x": flat_up_to,
        "final_train_loss": {name: h[-1]["loss"] for name, h in histories.items()},
        "n_train": len(x),
        "n_test": len(x_test),
    },
)
print_table(
    "horn: mean held-out free energy F on the manifold and off it",
    {
        name: {
            "on": r["on_manifold_mean"],
            **{f"off: {off}": r[f"off[{off}]_mean"] for off in off_manifold()},
        }
        for name, r in results.items()
    },
    header="model",
)
