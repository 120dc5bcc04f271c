"""The notes' detector with a latent location (fig. 17.1): 8×8 digits placed at random positions on
a 16×16 canvas with Gaussian noise (std 0.1); the position z is never given to the model.

Energy: per-class templates t_k slid over the canvas (``ebm.latent.TemplateEnergy``),
E(x, k, z) = ‖window_z(x) − t_k‖² at each of the 9×9 positions, and E(x, y) = F(x, y) = min_z
E(x, y, z) (exhaustive search over z); a ``ClassEnergy`` over the 10 labels. Training: the hinge
(margin) loss on the free energies, max(0, m + F(x, y) − min_{k≠y} F(x, k)), with m = 1.
The templates start at the class means of the isolated 8×8 training digits (as a face detector
starts from cropped faces); the canvas positions are never used for training.

Compared: the same model marginalising z at β = 1 (F = −log Σ_z exp(−E)); the same templates at
the canvas centre only (no latent: one window); a linear classifier on the whole canvas (same
loss; scikit-learn's logistic regression as its reference); and the latent model started from
noise, which fails (blank windows win the min).
Reported: test accuracy, and the location error |ž − z_true| of the true label's best window.

    python recipes/latent_detection.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from sklearn.linear_model import LogisticRegression
from torch import nn

from ebm.data import digits
from ebm.energies import ClassEnergy
from ebm.latent import TemplateEnergy
from ebm.losses import correct_and_offending, hinge_loss
from ebm.plot import add_colorbar, image_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()

CANVAS, SIZE, NOISE, MARGIN, LR = 16, 8, 0.1, 1.0, 0.01
EPOCHS = 3 if args.quick else 30
generator = torch.Generator().manual_seed(args.seed)  # canvases and the noise templates
torch.manual_seed(args.seed)  # the recipe owns its process: seeds the linear layer's initialisation


def place(images):
    """Each 8×8 image at a uniform random top-left corner of a noisy canvas: (N, 1, 16, 16), and
    the corners (N, 2) as (row, col)."""
    corners = torch.randint(0, CANVAS - SIZE + 1, (len(images), 2), generator=generator)
    canvas = NOISE * torch.randn(len(images), 1, CANVAS, CANVAS, generator=generator)
    rows = corners[:, 0, None, None] + torch.arange(SIZE)[None, :, None]  # (N, 8, 1)
    cols = corners[:, 1, None, None] + torch.arange(SIZE)[None, None, :]  # (N, 1, 8)
    canvas[torch.arange(len(images))[:, None, None], 0, rows, cols] += images[:, 0]
    return canvas, corners


train_digits, train_y = digits("train")
test_digits, test_y = digits("test")
if args.quick:
    train_digits, train_y, test_digits, test_y = (
        train_digits[:400],
        train_y[:400],
        test_digits[:150],
        test_y[:150],
    )
train_x, train_z = place(train_digits)
test_x, test_z = place(test_digits)
class_means = torch.stack([train_digits[train_y == k].mean(0) for k in range(10)])  # (10, 1, 8, 8)


class MarginClassifier(ClassEnergy):
    """A ClassEnergy trained by the hinge loss on its (free) energies (B, K), through the Trainer."""

    def training_step(self, batch):
        x, y = batch
        return hinge_loss(*correct_and_offending(self.energies(x), y), margin=MARGIN)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR)


class CentreCrop(nn.Module):
    """The canvas's central 8×8 window: the no-latent baseline sees only the middle."""

    def forward(self, x):
        start = (x.shape[-1] - SIZE) // 2
        return x[..., start : start + SIZE, start : start + SIZE]


def fit(backbone):
    model = MarginClassifier(backbone)
    trainer = Trainer(
        max_epochs=EPOCHS,
        batch_size=64,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
    )
    trainer.fit(model, (train_x, train_y))
    return model.cpu().eval()


def accuracy(model):
    with torch.no_grad():
        return (model.energies(test_x).argmin(1) == test_y).float().mean().item()


def location(model):
    """The best window of the true label, ž (N, 2), and its error against the true corner."""
    with torch.no_grad():
        z = model.backbone.free_energy(test_x, beta=math.inf).z[torch.arange(len(test_y)), test_y]
    distance = (z - test_z).float().norm(dim=1)
    return z, {"mean_px": distance.mean().item(), "exact": (distance == 0).float().mean().item()}


noise_templates = 0.1 * torch.randn(10, 1, SIZE, SIZE, generator=generator)
untrained = MarginClassifier(TemplateEnergy(class_means)).eval()
models = {
    "latent_min": fit(TemplateEnergy(class_means)),
    "latent_beta1": fit(TemplateEnergy(class_means, beta=1.0)),
    "centre_only": fit(nn.Sequential(CentreCrop(), TemplateEnergy(class_means))),
    "linear": fit(nn.Sequential(nn.Flatten(), nn.Linear(CANVAS * CANVAS, 10))),
    "latent_min_from_noise": fit(TemplateEnergy(noise_templates)),
}
results = {"n_train": len(train_y), "n_test": len(test_y), "epochs": EPOCHS, "accuracy": {}}
results["accuracy"]["class_means_untrained"] = accuracy(untrained)
results["accuracy"].update({name: accuracy(m) for name, m in models.items()})
# a reference for the linear baseline: scikit-learn's logistic regression on the same canvases
logistic = LogisticRegression(C=0.1, max_iter=2000).fit(train_x.flatten(1), train_y)
results["accuracy"]["linear_sklearn_logistic"] = logistic.score(test_x.flatten(1), test_y)
results["location"] = {"class_means_untrained": location(untrained)[1]}
for name in ("latent_min", "latent_beta1", "latent_min_from_noise"):
    results["location"][name] = location(models[name])[1]
best = models["latent_min"]
z_hat, _ = location(best)

# ---- figure 1: canvases, the energy map over z of the true label, the boxes ---------------------
with torch.no_grad():
    maps = best.backbone.energy_map(test_x)  # (N, 10, 9, 9)
    predicted = best.energies(test_x).argmin(1)
show = list(range(6))
wrong = torch.nonzero(predicted != test_y)[:, 0].tolist()
wrong = [i for i in wrong if i not in show]
show[-1] = wrong[0] if wrong else show[-1]  # one mistake, if there is one
fig, axes = plt.subplots(3, len(show), figsize=(11, 6.4), layout="constrained")
true_maps = maps[show, test_y[show]]  # (6, 9, 9)
vmin, vmax = true_maps.min().item(), true_maps.quantile(0.95).item()
for col, i in enumerate(show):
    ax = axes[0, col]
    ax.imshow(test_x[i, 0], cmap="gray", vmin=0, vmax=1)
    for (r, c), style in ((test_z[i], "g-"), (z_hat[i], "r--")):
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), SIZE, SIZE, fill=False, ec=style[0], ls=style[1:], lw=1.5)
        )
    ax.set_title(f"label {test_y[i]}, predicted {predicted[i]}", fontsize=9)
    ax.set_axis_off()
    ax = axes[1, col]
    image = ax.imshow(true_maps[col], cmap="viridis", vmin=vmin, vmax=vmax, origin="upper")
    ax.plot(test_z[i, 1], test_z[i, 0], "gx", ms=9, mew=2)
    ax.plot(z_hat[i, 1], z_hat[i, 0], "ro", mfc="none", ms=9)
    ax.set(xlabel="z column", ylabel="z row" if col == 0 else None)
    ax.set_title(f"E(x, y={test_y[i]}, z)", fontsize=9)
    ax = axes[2, col]
    ax.imshow(maps[i].amin((1, 2))[None], cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_yticks([])
    ax.set_xticks(range(10))
    ax.set(xlabel="label k")
    ax.set_title("F(x, k) = min_z E", fontsize=9)
add_colorbar(axes[1, -1], image, "energy (shared scale)")
fig.suptitle(
    "green: true window; red dashed / circle: ž of the true label; x: true corner (low = dark)"
)
save_figure(fig, args.out, "latent_detection")

# ---- figure 2: templates before and after, and the baselines' accuracy --------------------------
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), layout="constrained")
image_grid(axes[0], class_means, nrow=5, title="initial templates: class means")
learned = best.backbone.templates.detach()
lo, hi = learned.min(), learned.max()
image_grid(axes[1], (learned - lo) / (hi - lo), nrow=5, title="learned templates (min–max)")
ax = axes[2]
names = list(results["accuracy"])
ax.barh(range(len(names)), [results["accuracy"][n] for n in names], color="C0")
ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
ax.set(xlabel="test accuracy", xlim=(0, 1), title="who finds the digit")
for k, n in enumerate(names):
    ax.text(results["accuracy"][n] + 0.01, k, f"{results['accuracy'][n]:.3f}", va="center")
save_figure(fig, args.out, "latent_detection_templates")

# ---- key numbers --------------------------------------------------------------------------------
results["chance_location_exact"] = 1 / (CANVAS - SIZE + 1) ** 2
write_results(args.out, "latent_detection", results)
print_table(
    "latent detection: test accuracy and the true label's location error",
    {
        name: {
            "accuracy": acc,
            "mean |ž − z| (px)": results["location"].get(name, {}).get("mean_px"),
            "exact ž": results["location"].get(name, {}).get("exact"),
        }
        for name, acc in results["accuracy"].items()
    },
    header="model",
)
