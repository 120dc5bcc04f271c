"""The notes' spiral (ch. 37) classified by a ClassEnergy MLP 2→100→3, trained with six losses
of the energy-based family: perceptron, hinge, log, square-square, MEE and NLL.

The "switch" classifier gives one energy per label; inference is the argmin. Each loss pushes the
energy of the correct label down and the most offending wrong label (or every label, NLL) up.
A linear ClassEnergy trained with NLL is the baseline: the spiral is not linearly separable.

    python recipes/spiral_ebm.py [--quick] [--device auto] [--seed 0] [--data-seed 12345] [--out figures]
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

import ebm.losses as L
from ebm.data import spiral
from ebm.energies import ClassEnergy, mlp
from ebm.plot import (
    add_colorbar,
    decision_regions,
    energy_image,
    evaluate_on_grid,
    robust_range,
    use_style,
)
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(
    __doc__,
    add_arguments=lambda p: p.add_argument(
        "--data-seed", type=int, default=12345, help="seed of the spiral's points (default 12345)"
    ),
)
use_style()
EPOCHS = 20 if args.quick else 300
torch.manual_seed(args.seed)  # parameter initialisation (a script may seed the global RNG)

# ---- data: 3 classes × 1000 points, the notes' seed (12345) and angle noise; a fresh draw to test -
x_train, y_train = spiral(
    n_per_class=1000,
    n_classes=3,
    noise=0.33,
    generator=torch.Generator().manual_seed(args.data_seed),
)
x_test, y_test = spiral(
    n_per_class=1000,
    n_classes=3,
    noise=0.33,
    generator=torch.Generator().manual_seed(args.data_seed + 1),
)

# ---- the losses, each mapping energies E (B, 3) and labels (B,) to a scalar ----------------------
LOSSES = {
    "perceptron": lambda E, y: L.perceptron_loss(E, y),
    "hinge": lambda E, y: L.hinge_loss(*L.correct_and_offending(E, y), margin=1.0),
    "log": lambda E, y: L.log_loss(*L.correct_and_offending(E, y)),
    "square-square": lambda E, y: L.square_square_loss(*L.correct_and_offending(E, y), margin=1.0),
    "MEE": lambda E, y: L.mee_loss(E, y, beta=1.0),
    "NLL": lambda E, y: L.nll_loss(E, y, beta=1.0),
}


class SpiralEBM(nn.Module):
    """A ClassEnergy trained with one loss of the family (Adam, as in the notes)."""

    def __init__(self, backbone: nn.Module, loss, lr: float):
        super().__init__()
        self.energy, self.loss, self.lr = ClassEnergy(backbone), loss, lr

    def training_step(self, batch):
        x, y = batch
        E = self.energy.energies(x)  # (B, 3)
        return {"loss": self.loss(E, y), "acc": (E.argmin(1) == y).float().mean()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=1e-5)


def fit(backbone, loss):
    model = SpiralEBM(backbone, loss, lr=1e-2)
    trainer = Trainer(
        max_epochs=EPOCHS,
        batch_size=300,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(model, (x_train, y_train))
    return model.cpu().eval()


@torch.no_grad()
def accuracy(model, x, y):
    return (model.energy.predict(x) == y).float().mean().item()


models = {name: fit(mlp([2, 100, 3], nn.ReLU), loss) for name, loss in LOSSES.items()}
linear = fit(nn.Linear(2, 3), LOSSES["NLL"])

# ---- one decision-region panel per loss, and the accuracies as bars ----------------------------
fig, axes = plt.subplots(3, 3, figsize=(10, 10.4), layout="constrained")
box = dict(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), n=150 if args.quick else 300)
for c in range(3):
    axes[0, 0].scatter(*x_train[y_train == c].T, s=3, color=f"C{c}", linewidths=0)
axes[0, 0].set(title="data: 3 × 1000 points", xlim=box["xlim"], ylim=box["ylim"])
results = {}
for ax, (name, model) in zip(axes.flat[1:], [*models.items(), ("linear, NLL", linear)]):
    acc = {"train": accuracy(model, x_train, y_train), "test": accuracy(model, x_test, y_test)}
    results[name] = acc
    decision_regions(ax, model.energy.predict, **box, data=x_train, labels=y_train, n_classes=3)
    ax.set_title(f"{name}: test {acc['test']:.3f}")
for ax in axes.flat[:-1]:
    ax.set_aspect("equal")
    ax.set(xlabel="x₁", ylabel="x₂")
ax = axes[2, 2]
names = list(results)
test_accuracy = [results[name]["test"] for name in names]
ax.barh(range(len(names)), test_accuracy, color="C0")
ax.set_yticks(range(len(names)), names)
ax.invert_yaxis()
ax.set(xlim=(0, 1), xlabel="test accuracy (fresh draw)", title="argmin accuracy")
for k, value in enumerate(test_accuracy):
    ax.text(value - 0.02, k, f"{value:.3f}", va="center", ha="right", color="w", fontsize=9)
fig.suptitle(
    "Spiral: the label of lowest energy, argmin_y E(x, y), of a 2→100→3 ClassEnergy per loss\n"
    "(shading: predicted label; dots: training points in their true label's colour)"
)
save_figure(fig, args.out, "spiral_ebm")

# ---- one energy per label: E(x, y) over the plane for each label, three of the losses --------
SHOWN = ["square-square", "hinge", "NLL"]
fig, axes = plt.subplots(3, 3, figsize=(10, 9.6), layout="constrained", sharex=True, sharey=True)
label_energy = {}
for row, name in enumerate(SHOWN):
    energies = [
        evaluate_on_grid(lambda p, k=k, m=models[name]: m.energy.energies(p)[:, k], **box)[0]
        for k in range(3)
    ]
    with torch.no_grad():  # the colour range of the energies at the training points, all labels
        vmin, vmax = robust_range(models[name].energy.energies(x_train), lower=0.01, upper=0.99)
    for k, E in enumerate(energies):
        ax = axes[row, k]
        image = energy_image(ax, E, box["xlim"], box["ylim"], vmin=vmin, vmax=vmax, colorbar=False)
        ax.scatter(*x_train[y_train == k].T, s=2, color="w", alpha=0.6, linewidths=0)
        ax.set_title(f"{name}: E(x, y = {k})")
        ax.set_aspect("equal")
    add_colorbar(
        axes[row, 2],
        image,
        f"E(x, y), {name}, clipped at the 1st\nand 99th percentiles on the data",
        extend="both",
    )
    with torch.no_grad():
        E_test = models[name].energy.energies(x_test)  # (B, 3)
        correct, offending = L.correct_and_offending(E_test, y_test)
    label_energy[name] = {
        "correct": correct.mean().item(),
        "most_offending": offending.mean().item(),
    }
for ax in axes[2]:
    ax.set_xlabel("x₁")
for ax in axes[:, 0]:
    ax.set_ylabel("x₂")
fig.suptitle(
    "One energy per label: E(x, y) for y = 0, 1, 2 (dark = low; white: the training points of "
    "label y)\nthe prediction is the label whose map is darkest at x; one colour scale per loss"
)
save_figure(fig, args.out, "spiral_ebm_energies")

write_results(
    args.out,
    "spiral_ebm",
    {
        "accuracy": {name: results[name] for name in LOSSES},
        "linear_nll_accuracy": results["linear, NLL"],
        "test_mean_energy_correct_vs_most_offending": label_energy,
        "epochs": EPOCHS,
        "data_seed": args.data_seed,
        "quick": args.quick,
    },
)
print_table(
    f"spiral, {EPOCHS} epochs: accuracy of the argmin over label energies",
    results,
    header="loss",
)
print_table(
    "mean test energy of the correct label and of the most offending wrong one",
    label_energy,
    header="loss",
)
