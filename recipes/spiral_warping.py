"""The notes' "skinny" network (ch. 37.4, fig. 37.1): the noise-free spiral classified by a net that
never leaves the plane, and how each of its layers warps the plane.

The network is the notes' ``two_layer_network(D=2, C=3, hidden_layers=4, H=2)``: four blocks
Linear(2, 2) → LeakyReLU, the "added" Linear(2, 2), then Linear(2, 3); cross-entropy, Adam with
lr 1e-2 and weight decay 1e-9, 1000 full-batch steps, on 3 × 1000 points of the spiral with no
angle noise (the notes' seed 12345). Every hidden representation is 2-D, so each layer can be
drawn as a map of the plane: a square grid and the data, pushed through the layers one at a time,
until the last Linear(2, 3) cuts the warped plane into three convex regions. Its accuracy depends
on the initialisation ("with enough tweaking of the random seed ... 100 %"): several are trained,
every accuracy is reported, and two are drawn, the first one and the most accurate one.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebm.data import spiral
from ebm.plot import decision_regions, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()
STEPS = 300 if args.quick else 1000
N_INITS = 2 if args.quick else 8
LR, WEIGHT_DECAY = 1e-2, 1e-9

x, labels = spiral(1000, 3, noise=0.0, generator=torch.Generator().manual_seed(12345))


class Skinny(nn.Module):
    """The notes' skinny classifier: 4 × (Linear(2, 2), LeakyReLU), Linear(2, 2), Linear(2, 3)."""

    def __init__(self):
        super().__init__()
        blocks = [nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU()) for _ in range(4)]
        self.layers = nn.Sequential(*blocks, nn.Linear(2, 2), nn.Linear(2, 3))

    def representations(self, x):
        """x (B, 2) -> the input and the output of every layer: [x, h1, ..., h5, logits]."""
        out = [x]
        for layer in self.layers:
            out.append(layer(out[-1]))
        return out

    def forward(self, x):
        return self.layers(x)

    def training_step(self, batch):
        xb, yb = batch
        logits = self(xb)
        return {
            "loss": nn.functional.cross_entropy(logits, yb),
            "acc": (logits.argmax(1) == yb).float().mean(),
        }

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)


models, accuracy = [], []
for init in range(N_INITS):
    torch.manual_seed(args.seed + init)  # the initialisation: the only thing that differs
    model = Skinny()
    Trainer(
        max_epochs=None,
        max_steps=STEPS,
        batch_size=None,  # full batch, as the notes
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    ).fit(model, (x, labels))
    model = model.cpu().eval()
    with torch.no_grad():
        accuracy.append((model(x).argmax(1) == labels).float().mean().item())
    models.append(model)
best = max(range(N_INITS), key=lambda i: accuracy[i])

# ---- the plane, layer by layer -------------------------------------------------------------------
BOX, N_LINES = 1.2, 13
ticks = torch.linspace(-BOX, BOX, N_LINES)
along = torch.linspace(-BOX, BOX, 200)
lines = [torch.stack([torch.full_like(along, t), along], 1) for t in ticks] + [
    torch.stack([along, torch.full_like(along, t)], 1) for t in ticks
]  # vertical, then horizontal lines of the input grid, (200, 2) each
shown = torch.arange(0, len(x), 10)  # every 10th point, so the grid stays visible
names = ["input x", "h₁ (block 1)", "h₂ (block 2)", "h₃ (block 3)", "h₄ (block 4)", "h₅ (linear)"]


def draw(model, title, name):
    with torch.no_grad():
        reps = model.representations(x)
        grid_reps = [model.representations(line) for line in lines]
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.6), layout="constrained")
    for k, ax in enumerate(axes.flat):
        h = reps[k]
        if k in (0, 5):  # the classes the last layer assigns, in the input and in h₅
            if k == 0:
                lim = ((-BOX, BOX), (-BOX, BOX))
                predict = lambda p: model(p).argmax(1)  # noqa: E731
            else:
                pad = 0.1 * (h.max(0).values - h.min(0).values)
                low, high = h.min(0).values - pad, h.max(0).values + pad
                lim = ((low[0].item(), high[0].item()), (low[1].item(), high[1].item()))
                predict = lambda p: model.layers[-1](p).argmax(1)  # noqa: E731
            decision_regions(ax, predict, *lim, n=200, n_classes=3)
        for j, g in enumerate(grid_reps):
            ax.plot(g[k][:, 0], g[k][:, 1], c="0.35" if j < N_LINES else "0.65", lw=0.5)
        for c in range(3):
            pts = h[shown][labels[shown] == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, color=f"C{c}", linewidths=0, zorder=3)
        ax.set_title(names[k])
        ax.set(xlabel="coordinate 1", ylabel="coordinate 2")
        if k == 0:
            ax.set(xlim=(-BOX, BOX), ylim=(-BOX, BOX), aspect="equal")
    fig.suptitle(
        f"{title}\nthe input grid (dark: vertical, light: horizontal lines) and every 10th point, "
        "pushed through each layer; shaded: the class the last layer assigns"
    )
    save_figure(fig, args.out, name)
    return reps


reps_first = draw(
    models[0],
    f"Skinny network, initialisation 1 of {N_INITS}: accuracy {accuracy[0]:.3f}",
    "spiral_warping",
)
reps_best = draw(
    models[best],
    f"Skinny network, the most accurate of {N_INITS} initialisations ({best + 1}): "
    f"accuracy {accuracy[best]:.3f}",
    "spiral_warping_best",
)
save_samples(
    args.out,
    "spiral_warping",
    {"x": x, "labels": labels}
    | {f"first_layer_{k}": h for k, h in enumerate(reps_first[1:], 1)}
    | {f"best_layer_{k}": h for k, h in enumerate(reps_best[1:], 1)},
)
results = {
    "architecture": "4 x (Linear(2, 2), LeakyReLU), Linear(2, 2), Linear(2, 3)",
    "data": "spiral, 3 x 1000 points, angle noise 0, seed 12345",
    "steps": STEPS,
    "lr": LR,
    "weight_decay": WEIGHT_DECAY,
    "n_inits": N_INITS,
    "accuracy_by_init": accuracy,
    "accuracy_first_init": accuracy[0],
    "best_init": best + 1,
    "accuracy_best_init": accuracy[best],
    "inits_at_100_percent": sum(a == 1.0 for a in accuracy),
    "chance": 1 / 3,
}
write_results(args.out, "spiral_warping", results)
print_table(
    f"skinny network on the noise-free spiral, {STEPS} full-batch Adam steps: training accuracy",
    {f"init {i + 1}": {"accuracy": a, "drawn": i in (0, best)} for i, a in enumerate(accuracy)},
    header="initialisation",
)
