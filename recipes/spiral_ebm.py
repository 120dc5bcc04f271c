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
from ebm.plot import decision_regions
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(
    __doc__.split("\n\n")[0],
    add_arguments=lambda p: p.add_argument("--data-seed", type=int, default=12345),
)
EPOCHS = 20 if args.quick else 300
torch.manual_seed(args.seed)  # parameter initialisation (a script may seed the global RNG)

# ---- data: 3 classes × 1000 points, the notes' seed (12345) and angle noise; a fresh draw to test -
x_train, y_train = spiral(n_per_class=1000, n_classes=3, angle_noise=0.33, seed=args.data_seed)
x_test, y_test = spiral(n_per_class=1000, n_classes=3, angle_noise=0.33, seed=args.data_seed + 1)

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

# ---- one decision-region panel per loss ---------------------------------------------------------
fig, axes = plt.subplots(2, 4, figsize=(14, 7.6), sharex=True, sharey=True, layout="constrained")
box = dict(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), n=150 if args.quick else 300)
for c in range(3):
    axes[0, 0].scatter(*x_train[y_train == c].T, s=3, color=f"C{c}", linewidths=0)
axes[0, 0].set_title("data: 3 × 1000 points, angle noise 0.33")
results = {}
for ax, (name, model) in zip(axes.flat[1:], [*models.items(), ("linear, NLL", linear)]):
    acc = {"train": accuracy(model, x_train, y_train), "test": accuracy(model, x_test, y_test)}
    results[name] = acc
    decision_regions(ax, model.energy.predict, **box, data=x_train, labels=y_train, n_classes=3)
    ax.set_title(f"{name}: train {acc['train']:.3f}, test {acc['test']:.3f}")
for ax in axes.flat:
    ax.set_aspect("equal")
for ax in axes[1]:
    ax.set_xlabel("x₁")
for ax in axes[:, 0]:
    ax.set_ylabel("x₂")
fig.suptitle(
    "Spiral: the label of lowest energy, argmin_y E(x, y), of a 2→100→3 ClassEnergy, one panel "
    "per loss\n(shading: predicted label; dots: training points coloured by their true label; "
    "accuracies on the training set and a fresh test draw)"
)
save_figure(fig, args.out, "spiral_ebm")

write_results(
    args.out,
    "spiral_ebm",
    {
        "accuracy": {name: results[name] for name in LOSSES},
        "linear_nll_accuracy": results["linear, NLL"],
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
