"""The notes' conditional horn: E(x, y, z) = (y₁ − f₁(x) cos z)² + (y₂ − f₂(x) sin z)², with f a
1 → 8 → 8 → 2 ReLU net, g(z) = (cos z, sin z) and z on a grid of 48 angles over [0, 2π).

For each input x ~ U(0, 1) the data lie on an ellipse with radii ρ(x) = [αx + β(1 − x),
βx + α(1 − x)]·exp(2x); stacked over x they form a horn. The model is trained at zero temperature
(mean F∞ = min_z E) and with marginalisation (mean F_β, β = 1). Held-out points on the horn should
get a much lower free energy than points off it: the same points with radii scaled by 0.7 or 1.3,
and points paired with the wrong input x.

    python recipes/horn_latent.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import copy
import math

import matplotlib.pyplot as plt
import torch

from ebm.data import horn
from ebm.data.latent_toys import radii
from ebm.latent import HornEnergy
from ebm.plot import energy_landscape
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__.split("\n\n")[0])
torch.manual_seed(args.seed)  # parameter initialisation (a script may seed the global RNG)

# ---- data: training horn and a held-out draw ---------------------------------------------------
x, y, _ = horn(384 if args.quick else 2000, seed=args.seed)
x_test, y_test, _ = horn(256 if args.quick else 1000, seed=args.seed + 1)

# ---- models: one initialisation, trained at zero temperature and at β = 1 ------------------------
BETA = 1.0
initial = HornEnergy(hidden=(8, 8), n_z=48, lr=3e-2)


def fit(beta):
    model = copy.deepcopy(initial)
    model.beta = beta
    trainer = Trainer(
        max_epochs=150 if args.quick else 400,
        batch_size=128,
        device=args.device,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(model, (x, y))
    return model.cpu().eval(), trainer.history


LABELS = {"before": "before", "zero_temperature": "zero temperature", "beta": f"β = {BETA:g}"}
models = {"before": initial.eval()}
histories = {}
models["zero_temperature"], histories["zero_temperature"] = fit(math.inf)
models["beta"], histories["beta"] = fit(BETA)


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

# ---- figure 1: F∞(y | x) for three inputs, before and after training ----------------------------
X_SHOWN = (0.1, 0.5, 0.9)
fig, axes = plt.subplots(3, 3, figsize=(12, 11.5))
angles = torch.linspace(0, 2 * math.pi, 200)[:, None]
for col, xv in enumerate(X_SHOWN):
    lim = 1.35 * radii(xv).max().item()
    near = (x[:, 0] - xv).abs() < 0.04
    for row, (name, model) in enumerate(models.items()):
        ax = axes[row, col]
        cond = torch.full((1, 1), xv)
        energy_landscape(
            ax,
            lambda p, c=cond, m=model: m(p, c.expand(len(p), 1)),
            xlim=(-lim, lim),
            ylim=(-lim, lim),
            n=80 if args.quick else 160,
            log=True,
            colorbar=False,
        )
        with torch.no_grad():
            curve = model.decode(angles, cond.expand(len(angles), 1))
        ax.plot(curve[:, 0], curve[:, 1], "w--", lw=1)
        ax.scatter(y[near, 0], y[near, 1], c="r", s=8, zorder=3)
        ax.set_aspect("equal")
        ax.set_title(f"{LABELS[name]}: log F∞(y | x = {xv})")
fig.tight_layout()  # room for the axis labels between the rows
save_figure(fig, args.out, "horn_latent")

# ---- figure 2: learned radii |f(x)| against ρ(x); held-out free energies on vs off ---------------
fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
grid_x = torch.linspace(0, 1, 101)[:, None]
truth = radii(grid_x[:, 0])
ax = axes[0]
ax.plot(grid_x, truth[:, 0], "k-", lw=2, label="ρ₁(x)")
ax.plot(grid_x, truth[:, 1], "k--", lw=2, label="ρ₂(x)")
for k, (name, model) in enumerate(models.items()):
    with torch.no_grad():
        f = model.f(grid_x).abs()  # the sign of f is absorbed by z → −z or π − z
    ax.plot(grid_x, f[:, 0], "-", color=f"C{k}", label=f"|f₁|, {LABELS[name]}")
    ax.plot(grid_x, f[:, 1], "--", color=f"C{k}", label=f"|f₂|, {LABELS[name]}")
ax.set(xlabel="x", ylabel="radius", title="learned radii |f(x)| vs the true ρ(x)")
ax.legend(fontsize=7)
bins = torch.logspace(-4, 3, 50)
for ax, name in zip(axes[1:], ["zero_temperature", "beta"]):
    model = models[name]
    with torch.no_grad():
        on = model.free_energy(y_test, x_test).free_energy.clamp_min(1e-4)
        ax.hist(on, bins=bins, alpha=0.7, label="on the horn (held out)")
        for off_name, (xo, yo) in off_manifold().items():
            off = model.free_energy(yo, xo).free_energy.clamp_min(1e-4)
            ax.hist(off, bins=bins, histtype="step", lw=1.5, label=f"off: {off_name}")
    ax.set_xscale("log")
    ax.set(xlabel="F∞(x, y)", ylabel="count", title=f"held-out F∞, trained at {LABELS[name]}")
    ax.legend(fontsize=8)
save_figure(fig, args.out, "horn_latent_eval")

# ---- key numbers ------------------------------------------------------------------------------
write_results(
    args.out,
    "horn_latent",
    {
        "beta_finite": BETA,
        "held_out_F_inf": results,
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
