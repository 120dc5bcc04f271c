"""MC dropout on the notes' x·sin(x) toy (ch. 42, figures 42.2–42.4), next to a GP, a variational
BNN and a deep ensemble.

The notes' exact set-up: 20 points with x ~ U[−5, 5], the net Dropout(0.05) → Linear(1, 20) → act
→ Dropout(0.05) → Linear(20, 20) → act → Linear(20, 1), MSE, SGD (lr 0.01, weight decay 1e-5),
1000 full-batch epochs, then 100 stochastic passes over a grid on [−15, 15]. Bands are mean ± 2σ.
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import (
    DeepEnsemble,
    GPRegressor,
    MCDropout,
    Supervised,
    SVIRegressor,
    notes_regression_net,
    tau_from,
)
from ebm.data import x_sin_x
from ebm.metrics import crps_gaussian, crps_samples, gaussian_nll
from ebm.plot import uncertainty_band, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()
epochs = 300 if args.quick else 1000
torch.manual_seed(args.seed)

# data: the notes' 20 training points, a dense grid, and fresh in-range test points
x, y = x_sin_x(n=20, generator=torch.Generator().manual_seed(args.seed))
grid = torch.linspace(-15, 15, 1000).view(-1, 1)
x_test, y_test = x_sin_x(n=200, generator=torch.Generator().manual_seed(args.seed + 1))
inside, far = grid.abs().squeeze(1) <= 5, grid.abs().squeeze(1) >= 12


def train(net):
    model = Supervised(net, loss="mse", optimizer="sgd", lr=0.01, weight_decay=1e-5)
    Trainer(
        max_epochs=epochs,
        batch_size=None,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
    ).fit(model, (x, y))
    return net.cpu()


# MC dropout with tanh and with ReLU: same net, same training, predictions with dropout on
tau = tau_from(length_scale=1.0, keep_prob=0.95, n_data=len(x), weight_decay=1e-5, loss="mse")
nets = {"tanh": train(notes_regression_net(nn.Tanh)), "relu": train(notes_regression_net(nn.ReLU))}
predictions = {
    f"mc_dropout_{name}": MCDropout(net, n_samples=100, tau=tau, seed=args.seed).predict(grid)
    for name, net in nets.items()
}
nets["tanh"].eval()
with torch.no_grad():
    eval_passes = torch.stack([nets["tanh"](grid) for _ in range(10)])  # dropout off

# baselines behind the same Prediction interface
gp = GPRegressor(n_steps=40 if args.quick else 1000, device=args.device).fit(x, y)
svi = SVIRegressor(
    sizes=(1, 20, 20, 1),
    activation="tanh",
    # HalfNormal prior on the noise σ at MC dropout's scale (τ⁻¹ ≈ 1e-4, σ ≈ 0.01): the data are
    # noise-free, and a loose prior (0.1) lets σ explain the data away, so the weights stay at
    # their prior and the band is flat (CRPS 1.10 instead of 0.22)
    noise_scale=0.01,
    lr=0.02,
    max_epochs=40 if args.quick else 3000,
    seed=args.seed,
    device=args.device,
).fit(x, y)
ensemble = DeepEnsemble(
    lambda: notes_regression_net(nn.Tanh, p=0.0),
    n_members=2 if args.quick else 5,
    weight_decay=1e-5,
    max_epochs=150 if args.quick else 1000,
    noise_var=1.0 / tau,  # the same observation noise as MC dropout's
    seed=args.seed,
    device=args.device,
).fit(x, y)
baselines = {"gp": gp, "svi_bnn": svi, "deep_ensemble": ensemble}
predictions.update({name: model.predict(grid) for name, model in baselines.items()})

# figure: the point fit, then every predictive band, on one scale that holds every band; below,
# the predictive σ(x) of every method (log scale), the quantity "far over in range" measures
titles = {
    "mc_dropout_tanh": "MC dropout, tanh (fig. 42.3)",
    "mc_dropout_relu": "MC dropout, ReLU (fig. 42.4)",
    "gp": "GP, RBF kernel (type-II ML)",
    "svi_bnn": "variational BNN (AutoNormal)",
    "deep_ensemble": f"deep ensemble (M = {ensemble.n_members})",
}
xs = grid.squeeze(1)
low = min(float((p.mean - 2 * p.std).min()) for p in predictions.values())
high = max(float((p.mean + 2 * p.std).max()) for p in predictions.values())
low, high = min(low, -15.0), max(high, 15.0)  # at least the range of x·sin x on [−15, 15]
pad = 0.04 * (high - low)
fig = plt.figure(figsize=(10, 12.5))
layout = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.1])
axes = [fig.add_subplot(layout[i // 2, i % 2]) for i in range(6)]
for ax in axes[1:]:
    ax.sharex(axes[0])
    ax.sharey(axes[0])
axes[0].plot(xs, eval_passes[0].squeeze(1), color="C1", label="eval-mode net")
axes[0].set_title("point fit in eval mode, tanh (fig. 42.2)")
for ax, (name, pred) in zip(axes[1:], predictions.items()):
    uncertainty_band(
        ax, grid, pred.mean, pred.std, k=2.0, color="C1", label="mean", band_label="mean ± 2σ"
    )
    ax.set_title(titles[name])
for i, ax in enumerate(axes):
    ax.plot(xs, (xs * torch.sin(xs)), "k:", lw=0.8, label="x·sin x")
    ax.plot(x.squeeze(1), y.squeeze(1), "o", color="C0", ms=3.5, label="training data")
    ax.axvspan(-5, 5, color="0.92", zorder=-1, label="training range")
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(-15, 15)
    ax.set_ylabel("y" if i % 2 == 0 else None)
    ax.set_xlabel("x" if i >= 4 else None)
    ax.tick_params(labelleft=i % 2 == 0, labelbottom=i >= 4)
axes[0].legend(loc="lower center", fontsize=8)
axes[1].legend(loc="lower center", fontsize=8)
ax = fig.add_subplot(layout[3, :])
short = {
    "mc_dropout_tanh": "MC dropout, tanh",
    "mc_dropout_relu": "MC dropout, ReLU",
    "gp": "GP",
    "svi_bnn": "variational BNN",
    "deep_ensemble": "deep ensemble",
}
for k, (name, pred) in enumerate(predictions.items()):
    std = pred.std.squeeze(1)
    ratio = std[far].mean() / std[inside].mean()  # as in the JSON
    ax.plot(xs, std, color=f"C{k}", lw=1, label=f"{short[name]}: far/in {ratio:.3g}")
ax.axvspan(-5, 5, color="0.92", zorder=-1)
for side in (-1, 1):  # the far region, |x| ≥ 12
    ax.axvspan(12 * side, 15 * side, color="C3", alpha=0.08, zorder=-1)
ax.set_yscale("log")
ax.set(xlim=(-15, 15), xlabel="x", ylabel="predictive σ(x)")
ax.set_title("predictive σ: far (|x| ≥ 12, pink) over in range (|x| ≤ 5, grey)")
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False)
fig.tight_layout()
save_figure(fig, args.out, "mc_dropout_regression")
# numbers: in-range CRPS and NLL for every method; how the spread behaves far from the data
test_predictions = {
    **{
        f"mc_dropout_{name}": MCDropout(net, n_samples=100, tau=tau, seed=args.seed).predict(x_test)
        for name, net in nets.items()
    },
    **{name: model.predict(x_test) for name, model in baselines.items()},
}
results = {"epochs": epochs, "tau": tau, "eval_mode_spread": eval_passes.std(0).max()}
for name, pred in test_predictions.items():
    results[f"{name}_crps_in_range"] = crps_gaussian(y_test, pred.mean, pred.var)
    results[f"{name}_nll_in_range"] = gaussian_nll(y_test, pred.mean, pred.var)
    if pred.samples is not None:
        results[f"{name}_crps_samples_in_range"] = crps_samples(y_test, pred.samples)
for name, pred in predictions.items():
    std = pred.std.squeeze(1)
    results[f"{name}_std_far_over_in_range"] = std[far].mean() / std[inside].mean()
at_15, at_12 = (
    [(grid - v).abs().argmin().item() for v in (-15, 15)],
    [(grid - v).abs().argmin().item() for v in (-12, 12)],
)
for name in ("tanh", "relu"):
    std = predictions[f"mc_dropout_{name}"].std.squeeze(1)
    results[f"mc_dropout_{name}_std_at_15_over_12"] = std[at_15].mean() / std[at_12].mean()
results["gp_lengthscale"] = gp.lengthscale_
results["gp_noise"] = gp.noise_
write_results(args.out, "mc_dropout_regression", results)
# what the figure draws (mean and σ on the grid) and what the scores use (on the test points)
save_samples(
    args.out,
    "mc_dropout_regression",
    {
        "x_grid": grid,
        "x_train": x,
        "y_train": y,
        "eval_mode_net": eval_passes[0],
        "x_test": x_test,
        "y_test": y_test,
        **{f"{name}/mean": p.mean for name, p in predictions.items()},
        **{f"{name}/std": p.std for name, p in predictions.items()},
        **{f"{name}/test_mean": p.mean for name, p in test_predictions.items()},
        **{f"{name}/test_std": p.std for name, p in test_predictions.items()},
    },
)
print_table(
    f"x·sin x, {epochs} epochs: in range (|x| ≤ 5) and far (|x| ≥ 12)",
    {
        name: {
            "CRPS in range": results[f"{name}_crps_in_range"],
            "NLL in range": results[f"{name}_nll_in_range"],
            "σ far / σ in": results[f"{name}_std_far_over_in_range"],
        }
        for name in predictions
    },
    header="method",
)
