"""The energy-based loss family, drawn: every loss of ``ebm.losses`` as a function of p − n, or
over the plane (p, n), like the lecture notes' figures of the hinge, log and square-square losses.

p is the energy of the correct answer, n the energy of the most offending wrong answer; low
energy is good. With two candidates (K = 2) the perceptron, NLL and MEE losses are functions of
p − n too, which shows their limits as beta grows: NLL tends to the perceptron loss, MEE to the
0/1 loss.

    python recipes/loss_shapes.py [--quick] [--out figures]
"""

import math

import matplotlib.pyplot as plt
import torch

import ebm.losses as L
from ebm.plot import energy_image, evaluate_on_grid
from ebm.recipe import parse_args, print_table, save_figure, write_results

args = parse_args(__doc__)
n_points = 101 if args.quick else 401

# ---- the margin losses as functions of p − n (n = 0) ------------------------------------------
x = torch.linspace(-4, 4, n_points)
zero = torch.zeros_like(x)
margin_losses = {
    "hinge (m = 1)": L.hinge_loss(x, zero, margin=1.0, reduction="none"),
    "log = softplus": L.log_loss(x, zero, reduction="none"),
    "LVQ2 (cap = 1)": L.lvq2_loss(x, zero, cap=1.0, reduction="none"),
    "MCE = sigmoid": L.mce_loss(x, zero, reduction="none"),
}


def two_candidates(p_minus_n):
    """E = (p − n, 0) with target 0: the correct answer's energy is p − n, the other's 0."""
    E = torch.stack([p_minus_n, torch.zeros_like(p_minus_n)], dim=1)
    return E, torch.zeros(len(p_minus_n), dtype=torch.long)


E2, t2 = two_candidates(x)
betas = (0.5, 1.0, 4.0)
nll = {b: L.nll_loss(E2, t2, beta=b, reduction="none") for b in betas}
mee = {b: L.mee_loss(E2, t2, beta=b, reduction="none") for b in betas}
perceptron = L.perceptron_loss(E2, t2, reduction="none")

fig, axes = plt.subplots(2, 2, figsize=(10, 8), layout="constrained")
ax = axes[0, 0]
for label, y in margin_losses.items():
    ax.plot(x, y, label=label)
ax.plot(x, perceptron, "k:", label="perceptron (K = 2)")
ax.set(title="margin losses", xlabel="p − n", ylabel="loss", ylim=(-0.1, 4.5))
ax.legend(fontsize=8)

ax = axes[0, 1]
for b, y in nll.items():
    ax.plot(x, y, label=f"β = {b:g}")
ax.plot(x, perceptron, "k--", label="β → ∞: perceptron")
ax.set(title="NLL / MMI (K = 2)", xlabel="p − n", ylabel="loss", ylim=(-0.1, 4.5))
ax.legend(fontsize=8)

ax = axes[1, 0]
for b, y in mee.items():
    ax.plot(x, y, label=f"β = {b:g}")
ax.plot(x, (x > 0).float(), "k--", label="β → ∞: 0/1 loss")
ax.set(title="MEE (K = 2)", xlabel="p − n", ylabel="loss", ylim=(-0.05, 1.05))
ax.legend(fontsize=8)

ax = axes[1, 1]
d = torch.linspace(0, 2.5, n_points)
ax.plot(
    d,
    L.contrastive_loss(d, torch.ones_like(d, dtype=torch.bool), reduction="none"),
    label="matching: ½d²",
)
ax.plot(
    d,
    L.contrastive_loss(d, torch.zeros_like(d, dtype=torch.bool), reduction="none"),
    label="non-matching: ½max(0, m − d)²",
)
ax.axvline(1.0, color="grey", lw=0.5)
ax.set(title="contrastive (m = 1)", xlabel="distance d = energy of the pair", ylabel="loss")
ax.legend(fontsize=8)
fig.suptitle("The energy-based loss family (low energy = good): p correct, n most offending")
save_figure(fig, args.out, "loss_shapes")

# ---- losses over the plane (p, n) for non-negative energies ------------------------------------
pair_losses = {
    "energy loss: p": lambda pn: L.energy_loss(pn[:, 0], reduction="none"),
    "hinge: max(0, 1 + p − n)": lambda pn: L.hinge_loss(pn[:, 0], pn[:, 1], reduction="none"),
    "square-square: p² + max(0, 1 − n)²": lambda pn: L.square_square_loss(
        pn[:, 0], pn[:, 1], margin=1.0, reduction="none"
    ),
    "square-exp: p² + exp(−n)": lambda pn: L.square_exp_loss(
        pn[:, 0], pn[:, 1], beta=1.0, reduction="none"
    ),
}
# one colour scale and the same contour levels for all four: the panels compare loss values
plane = (0.0, 2.0)
maps = {
    title: evaluate_on_grid(fn, plane, plane, n=n_points)[0] for title, fn in pair_losses.items()
}
top = max(E.max().item() for E in maps.values())
levels = torch.arange(0.5, top, 0.5).tolist()
fig, axes = plt.subplots(2, 2, figsize=(10, 8.6), sharex=True, sharey=True, layout="constrained")
for ax, (title, E) in zip(axes.flat, maps.items()):
    image = energy_image(ax, E, plane, plane, vmin=0.0, vmax=top, colorbar=False)
    grid = torch.linspace(*plane, n_points)
    ax.contour(grid, grid, E, levels=levels, colors="w", linewidths=0.5)
    ax.plot([0, 2], [0, 2], "w--", lw=0.8)  # p = n: the decision boundary
    ax.set_title(title)
for ax in axes[1]:
    ax.set_xlabel("p: energy of the correct answer")
for ax in axes[:, 0]:
    ax.set_ylabel("n: energy of the most\noffending wrong answer")
fig.colorbar(image, ax=axes, shrink=0.7, label="loss (contours every 0.5)")
fig.suptitle("Losses over (p, n), one colour scale (dark = low); dashed: p = n")
save_figure(fig, args.out, "loss_shapes_plane")


# ---- key numbers: each loss at p − n = −1, 0, 1 and the direction square-square pushes n -------
def at(value):
    v = torch.tensor([float(value)])
    E, t = two_candidates(v)
    return {
        "hinge": L.hinge_loss(v, torch.zeros(1)).item(),
        "log": L.log_loss(v, torch.zeros(1)).item(),
        "lvq2": L.lvq2_loss(v, torch.zeros(1)).item(),
        "mce": L.mce_loss(v, torch.zeros(1)).item(),
        "perceptron": L.perceptron_loss(E, t).item(),
        "nll_beta1": L.nll_loss(E, t).item(),
        "mee_beta1": L.mee_loss(E, t).item(),
    }


n = torch.tensor([0.5], requires_grad=True)
L.square_square_loss(torch.tensor([0.5]), n).backward()
write_results(
    args.out,
    "loss_shapes",
    {
        "at_p_minus_n": {str(v): at(v) for v in (-1, 0, 1)},
        "square_square_dloss_dn_at_p0.5_n0.5": n.grad.item(),  # < 0: pushes n up (the PLUS)
        "nll_minus_perceptron_max": {
            str(b): (nll[b] - perceptron).max().item() for b in betas
        },  # <= log(2)/β
        "log2_over_beta": {str(b): math.log(2) / b for b in betas},
    },
)
print_table(
    "each loss at p − n = −1, 0, 1 (two candidates for perceptron, NLL, MEE; β = 1)",
    {
        loss: {f"p − n = {v}": at(v)[loss] for v in (-1, 0, 1)}
        for loss in ("hinge", "log", "lvq2", "mce", "perceptron", "nll_beta1", "mee_beta1")
    },
    header="loss",
)
print_table(
    "NLL − perceptron, max over p − n (bound ln 2 / β)",
    {f"β = {b:g}": {"max": (nll[b] - perceptron).max(), "bound": math.log(2) / b} for b in betas},
)
