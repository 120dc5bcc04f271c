"""Elastic matching (notes ch. 17.2): recognise keyword-like time series by their template
energies, with the alignment between the series and the template as the latent variable.

Four classes of "keywords" are sums of two or three Gaussian bumps on u in [0, 1] (up-down,
down-up, up-up-down, down-up-up), drawn as 32-sample templates. Each series is 64 samples of
silence with one keyword in it: the keyword lasts 45 % to 95 % of the window from a random onset
(stretched), runs through a random monotone time warp u = τ(v) (τ' = exp of three random
sinusoids, amplitudes up to 0.8), is scaled by a gain in [0.8, 1.2] and gets Gaussian noise of
std 0.15. The energy of template k is the free energy of the squared-difference cost
cost[i, j] = (x_i − t_k,j)² over the alignments, ``ebm.inference.soft_dtw(cost, β)``: DTW at
β = ∞, the marginal over alignments at finite β. A series gets the class of lowest energy; the
Euclidean baseline compares it with each template linearly resampled to 64 samples.

The templates are then learned through the free energy: from the class means of the training
series (resampled to 32 samples, blurred by the warps), by the NLL loss over the four class
energies (``ebm.losses.nll_loss``, Gibbs temperature 1) with the Trainer, once with soft-DTW at
β = 10 and once with DTW (β = ∞). Held-out accuracy is reported for the true templates, the
class means before training and the two learned sets, with each of the three energies.

    python recipes/elastic_matching.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ebm.inference import expected_alignment, soft_dtw
from ebm.losses import nll_loss
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)

N_CLASSES, TEMPLATE_LEN, SERIES_LEN, NOISE = 4, 32, 64, 0.15
BETA = 10.0  # soft-DTW's inverse temperature (β = ∞: DTW)
BUMPS = {  # class: (centres, amplitudes) of Gaussian bumps of width 0.08 on u in [0, 1]
    "up-down": ((0.3, 0.7), (1.0, -1.0)),
    "down-up": ((0.3, 0.7), (-1.0, 1.0)),
    "up-up-down": ((0.25, 0.5, 0.75), (1.0, 1.0, -1.0)),
    "down-up-up": ((0.25, 0.5, 0.75), (-1.0, 1.0, 1.0)),
}
NAMES = list(BUMPS)


def keyword(k: int, u: torch.Tensor) -> torch.Tensor:
    """Class k's shape at positions u (any shape), 0 (silence) away from its bumps."""
    centres, amplitudes = BUMPS[NAMES[k]]
    return sum(a * torch.exp(-0.5 * ((u - c) / 0.08) ** 2) for c, a in zip(centres, amplitudes))


def true_templates() -> torch.Tensor:
    u = torch.linspace(0, 1, TEMPLATE_LEN)
    return torch.stack([keyword(k, u) for k in range(N_CLASSES)])  # (K, M)


def warped_series(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n series (n, T) and their classes (n,): stretched, warped, scaled and noisy keywords."""
    y = torch.randint(0, N_CLASSES, (n,), generator=generator)
    t = torch.linspace(0, 1, SERIES_LEN)
    duration = 0.45 + 0.5 * torch.rand(n, 1, generator=generator)
    onset = (1 - duration) * torch.rand(n, 1, generator=generator)
    v = ((t - onset) / duration).clamp(0, 1)  # position inside the keyword, (n, T)
    # a random monotone warp τ of [0, 1]: τ(v) = ∫₀^v r / ∫₀^1 r with r = exp(Σ a sin(2πfv + φ))
    grid = torch.linspace(0, 1, 201)
    amplitude = 0.8 * torch.rand(n, 3, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(n, 3, 1, generator=generator)
    frequency = torch.tensor([1.0, 2.0, 3.0])[:, None]
    rate = torch.exp((amplitude * torch.sin(2 * math.pi * frequency * grid + phase)).sum(1))
    tau = F.pad(torch.cumsum(rate[:, 1:] + rate[:, :-1], 1), (1, 0))
    tau = tau / tau[:, -1:]
    position = v * 200
    low = position.floor().long().clamp(max=199)
    frac = position - low
    u = tau.gather(1, low) * (1 - frac) + tau.gather(1, low + 1) * frac
    gain = 0.8 + 0.4 * torch.rand(n, 1, generator=generator)
    clean = torch.stack([keyword(int(k), uk) for k, uk in zip(y, u)]) * gain
    return clean + NOISE * torch.randn(n, SERIES_LEN, generator=generator), y


def cost_matrices(x: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """(N·K, T, M) squared differences of every series (N, T) with every template (K, M)."""
    return (x[:, None, :, None] - templates[None, :, None, :]).pow(2).flatten(0, 1)


def energies(x: torch.Tensor, templates: torch.Tensor, beta: float) -> torch.Tensor:
    """(N, K) template energies: soft-DTW free energies at β (DTW at β = ∞)."""
    return soft_dtw(cost_matrices(x, templates), beta).view(len(x), len(templates))


def euclidean(x: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """(N, K) squared distances to the templates linearly resampled to the series' length."""
    stretched = F.interpolate(templates[None], size=x.shape[1], mode="linear", align_corners=True)
    return (x[:, None] - stretched[0][None]).pow(2).sum(-1)


class TemplateMatcher(nn.Module):
    """K learnable templates (K, M); energy of class k = soft_dtw of the series against t_k."""

    def __init__(self, templates: torch.Tensor, beta: float, lr: float = 0.05):
        super().__init__()
        self.templates = nn.Parameter(templates.clone())
        self.beta, self.lr = beta, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return energies(x, self.templates, self.beta)

    def training_step(self, batch):
        x, y = batch
        return nll_loss(self(x), y)  # the Gibbs distribution over classes: softmax(−F)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


# ---- data ------------------------------------------------------------------------------------------
n_train, n_test = (80, 120) if args.quick else (240, 600)
x_train, y_train = warped_series(n_train, torch.Generator().manual_seed(args.seed))
x_test, y_test = warped_series(n_test, torch.Generator().manual_seed(args.seed + 1))
truth = true_templates()
class_means = torch.stack(
    [
        F.interpolate(
            x_train[y_train == k].mean(0)[None, None],
            size=TEMPLATE_LEN,
            mode="linear",
            align_corners=True,
        )
        for k in range(N_CLASSES)
    ]
)[:, 0, 0]


# ---- learn the templates through the free energy ---------------------------------------------------
def fit(beta: float):
    model = TemplateMatcher(class_means, beta)
    trainer = Trainer(
        max_epochs=4 if args.quick else 30,
        batch_size=60,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(model, (x_train, y_train))
    return model.templates.detach().cpu(), trainer.history


learned_soft, history_soft = fit(BETA)
learned_dtw, history_dtw = fit(math.inf)
TEMPLATES = {
    "true": truth,
    "class_means": class_means,
    f"learned_soft_dtw_beta_{BETA:g}": learned_soft,
    "learned_dtw": learned_dtw,
}
METHODS = {
    "euclidean": euclidean,
    "dtw": lambda x, t: energies(x, t, math.inf),
    f"soft_dtw_beta_{BETA:g}": lambda x, t: energies(x, t, BETA),
}
with torch.no_grad():
    test_energies = {
        (tname, mname): method(x_test, t)
        for tname, t in TEMPLATES.items()
        for mname, method in METHODS.items()
    }
accuracy = {
    tname: {
        mname: (test_energies[tname, mname].argmin(1) == y_test).float().mean() for mname in METHODS
    }
    for tname in TEMPLATES
}
# the soft-DTW energies of the true templates at other temperatures (the entropy of the
# alignments, −(1/β)·log of their number, shifts every class alike; their spread does not)
with torch.no_grad():
    beta_sweep = {
        f"{b:g}": (energies(x_test, truth, b).argmin(1) == y_test).float().mean()
        for b in (1.0, 3.0, 10.0, 30.0, 100.0, math.inf)
    }

# ---- figure ------------------------------------------------------------------------------------------
fig, axes = plt.subplots(2, 3, figsize=(15, 8.6), layout="constrained")
t_axis = torch.linspace(0, 1, SERIES_LEN)
u_axis = torch.linspace(0, 1, TEMPLATE_LEN)

ax = axes[0, 0]  # a few series of two classes next to their templates
for k, color in ((0, "C0"), (2, "C3")):
    for x in x_train[y_train == k][:3]:
        ax.plot(t_axis, x, color=color, lw=0.8, alpha=0.7)
    ax.plot(u_axis, truth[k], color=color, lw=2.5, ls="--", label=f"template {NAMES[k]}")
ax.set(
    xlabel="time (series: 64 samples; template: 32 samples drawn over [0, 1])",
    ylabel="value",
    title="training series (thin), true templates (dashed)",
)
ax.legend(fontsize=8)

ax = axes[0, 1]  # the cost matrix of one held-out series against its template, with alignments
example = int((y_test == 2).nonzero()[0, 0])
cost = cost_matrices(x_test[example : example + 1], truth[2:3])
image = ax.imshow(
    cost[0].T.log10().clamp_min(-3), origin="lower", aspect="auto", cmap="viridis",
    extent=(-0.5, SERIES_LEN - 0.5, -0.5, TEMPLATE_LEN - 0.5),
)  # fmt: skip
fig.colorbar(image, ax=ax, label="log₁₀ cost (x_i − t_j)², clipped at 10⁻³")
soft = expected_alignment(cost, BETA)[0].T
ax.contour(soft, levels=[0.1, 0.5], colors=["w", "w"], linewidths=[0.6, 1.2], linestyles=[":", "-"])
hard = expected_alignment(cost)[0].T.nonzero()
ax.plot(hard[:, 1], hard[:, 0], "r.", ms=3, label="DTW path (β = ∞)")
ax.plot([], [], "w-", label=f"P((i, j) ∈ A) = 0.5, 0.1 at β = {BETA:g}")
ax.set(
    xlabel="series index i",
    ylabel="template index j",
    title=f"a held-out series against the {NAMES[2]} template",
)
ax.legend(fontsize=8, loc="upper left")

ax = axes[0, 2]  # templates: true, class means, learned
for k, color in enumerate(("C0", "C1", "C3", "C2")):
    ax.plot(u_axis, truth[k] + 3 * k, color=color, lw=2.5, ls="--")
    ax.plot(u_axis, class_means[k] + 3 * k, color="0.6", lw=1.2)
    ax.plot(u_axis, learned_soft[k] + 3 * k, color=color, lw=1.4)
    ax.text(1.01, 3 * k, NAMES[k], fontsize=8, va="center")
ax.plot([], [], "k--", lw=2.5, label="true")
ax.plot([], [], color="0.6", label="class mean (initial)")
ax.plot([], [], "k-", lw=1.4, label=f"learned, soft-DTW β = {BETA:g}")
ax.set(xlabel="template position u", ylabel="value (classes offset by 3)", title="templates")
ax.legend(fontsize=8, loc="upper left")


def correct_and_wrong(E):
    """The correct template's energy and the lowest wrong one's, each (N,)."""
    return E.gather(1, y_test[:, None])[:, 0], E.scatter(1, y_test[:, None], math.inf).amin(1)


key = f"soft_dtw_beta_{BETA:g}"
margins = {
    "before training (class means)": correct_and_wrong(test_energies["class_means", key]),
    "after training": correct_and_wrong(test_energies[f"learned_soft_dtw_beta_{BETA:g}", key]),
}
low = min(min(c.min(), w.min()).item() for c, w in margins.values()) - 0.5
high = max(max(c.max(), w.max()).item() for c, w in margins.values()) + 0.5
for ax, (title, (correct, wrong)) in zip(axes[1, :2], margins.items()):  # notes fig. 17.2
    ok = correct < wrong
    ax.scatter(correct[ok], wrong[ok], s=6, c="C0", label=f"right ({int(ok.sum())})")
    ax.scatter(correct[~ok], wrong[~ok], s=8, c="C3", label=f"wrong ({int((~ok).sum())})")
    ax.plot([low, high], [low, high], "k-", lw=0.8)
    ax.set(
        xlim=(low, high),
        ylim=(low, high),
        xlabel=f"soft-DTW F (β = {BETA:g}) of the correct template",
        ylabel="lowest F of a wrong template",
        title=f"{title}: right above the diagonal",
    )
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
ax = axes[1, 2]  # accuracy table as bars
width = 0.2
for m, (mname, label) in enumerate(zip(METHODS, ("Euclidean", "DTW", f"soft-DTW β = {BETA:g}"))):
    values = [accuracy[tname][mname] for tname in TEMPLATES]
    ax.bar([i + (m - 1) * width for i in range(len(TEMPLATES))], values, width, label=label)
ax.set_xticks(
    range(len(TEMPLATES)), ["true", "class means", f"learned\nβ = {BETA:g}", "learned\nβ = ∞"]
)
ax.set(
    ylim=(0, 1),
    ylabel=f"held-out accuracy ({n_test} series)",
    title="classification by lowest template energy",
)
ax.axhline(1 / N_CLASSES, color="k", lw=0.8, ls=":")
ax.legend(fontsize=8, loc="lower right")
fig.suptitle(
    "Elastic matching (notes fig. 17.2): the alignment is the latent variable, "
    "F = soft_dtw(cost, β) its free energy (dark = low cost)"
)
save_figure(fig, args.out, "elastic_matching")

save_samples(
    args.out,
    "elastic_matching",
    {"x_test": x_test, "y_test": y_test, **{f"templates_{k}": v for k, v in TEMPLATES.items()}},
)
write_results(
    args.out,
    "elastic_matching",
    {
        "held_out_accuracy": accuracy,
        "true_templates_accuracy_by_beta": beta_sweep,
        "beta": BETA,
        "final_train_loss": {"soft_dtw": history_soft[-1]["loss"], "dtw": history_dtw[-1]["loss"]},
        "n_train": n_train,
        "n_test": n_test,
        "series_len": SERIES_LEN,
        "template_len": TEMPLATE_LEN,
        "noise": NOISE,
    },
)
print_table("elastic matching: held-out accuracy", accuracy, header="templates")
