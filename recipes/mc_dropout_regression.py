"""MC dropout on the notes' x·sin(x) toy (ch. 42, figures 42.2–42.4), next to a GP, a variational
BNN and a deep ensemble.

The notes' exact set-up: 20 points with x ~ U[−5, 5], the net Dropout(0.05) → Linear(1, 20) → act
→ Dropout(0.05) → Linear(20, 20) → act → Linear(20, 1), MSE, SGD (lr 0.01, weight decay 1e-5),
1000 full-batch epochs, then 100 stochastic passes over a grid on [−15, 15]. Bands are mean ± 2σ.

Beyond MC dropout: last-layer Laplace and SWAG on the same two nets, and split conformal 90 %
intervals (absolute and σ-normalised scores) around every method, calibrated on 200 fresh points
from the same generator (the notes' 20 are all training data). A second figure,
``mc_dropout_regression_coverage.png``, draws the observed coverage against 1 − α: conformal
against the raw Gaussian band.
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import (
    SWAG,
    DeepEnsemble,
    GPRegressor,
    LastLayerLaplace,
    MCDropout,
    SplitConformalRegressor,
    Supervised,
    SVIRegressor,
    SWAGCallback,
    notes_regression_net,
    tau_from,
)
from ebm.data import x_sin_x
from ebm.metrics import crps_gaussian, crps_samples, gaussian_nll
from ebm.plot import coverage_curve, uncertainty_band, use_style
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


def train(net, callbacks=()):
    model = Supervised(net, loss="mse", optimizer="sgd", lr=0.01, weight_decay=1e-5)
    Trainer(
        max_epochs=epochs,
        batch_size=None,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        callbacks=callbacks,
    ).fit(model, (x, y))
    return net.cpu()


# MC dropout with tanh and with ReLU: same net, same training, predictions with dropout on. SWAG
# collects the weights along the same runs (second half, every 10th epoch: the dropout masks make
# the full-batch iterates wander); the callback only reads the weights, the training is unchanged
tau = tau_from(length_scale=1.0, keep_prob=0.95, n_data=len(x), weight_decay=1e-5, loss="mse")
swag_callbacks = {
    name: SWAGCallback(start_epoch=epochs // 2, collect_every=10, max_rank=20)
    for name in ("tanh", "relu")
}
nets = {
    name: train(notes_regression_net(activation), callbacks=[swag_callbacks[name]])
    for name, activation in (("tanh", nn.Tanh), ("relu", nn.ReLU))
}
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
# ---- issue 17: last-layer Laplace and SWAG on the same two nets; split conformal intervals -------
# Laplace: a Gaussian over the last Linear(20, 1) of each trained dropout net (eval mode), GGN in
# full, the prior precision from the evidence; σ is the eval-mode net's RMS residual on the 20
# training points (the noise's maximum-likelihood value at θ*: the targets are noise-free, and
# MC dropout's τ^-1/2 ≈ 0.01 would call a fit that is off by ~0.1 certain). SWAG: 30 samples of
# all the weights, MC dropout's τ⁻¹ added as the observation noise (as the ensemble's).
posthoc = {}
for name, net in nets.items():
    net.eval()
    with torch.no_grad():
        sigma = (net(x) - y).pow(2).mean().sqrt().clamp_min(1e-3).item()
    laplace = LastLayerLaplace(net, "regression", sigma_noise=sigma).fit(x, y)
    posthoc[f"laplace_{name}"] = laplace.optimize_prior_precision()
    results[f"laplace_{name}_sigma_noise"] = sigma
    results[f"laplace_{name}_prior_precision"] = laplace.prior_precision
for name, net in nets.items():
    posthoc[f"swag_{name}"] = SWAG(net, swag_callbacks[name], noise_var=1.0 / tau)
    results[f"swag_{name}_snapshots"] = swag_callbacks[name].n_collected


def predict(model, points, seed=args.seed):
    """One Prediction per call; SWAG draws from its own seeded generator."""
    if isinstance(model, SWAG):
        return model.predict(points, n_samples=30, generator=torch.Generator().manual_seed(seed))
    return model.predict(points)


for name, model in posthoc.items():
    pred, on_grid = predict(model, x_test), predict(model, grid)
    results[f"{name}_crps_in_range"] = crps_gaussian(y_test, pred.mean, pred.var)
    results[f"{name}_nll_in_range"] = gaussian_nll(y_test, pred.mean, pred.var)
    std = on_grid.std.squeeze(1)
    results[f"{name}_std_far_over_in_range"] = std[far].mean() / std[inside].mean()
    test_predictions[name] = pred

# split conformal at α = 0.1. The 20 training points are the notes' whole data set, and with n
# calibration points q̂ is finite only for n >= 1/α − 1 = 9, and the coverage of one split scatters
# by ~sqrt(α(1 − α)/n): 20 points cannot both train the net and calibrate it. Calibration points
# are a fresh draw of 200 from the same generator (x ~ U[−5, 5], y = x·sin x, seed + 2), disjoint
# from the training points (seed) and the 200 test points (seed + 1).
ALPHA, Z90 = 0.1, 1.6448536269514722  # Φ⁻¹(0.95): the Gaussian band mean ± zσ holds 90 %
x_cal, y_cal = x_sin_x(n=200, generator=torch.Generator().manual_seed(args.seed + 2))
predictors = {
    **{
        f"mc_dropout_{name}": MCDropout(net, n_samples=100, tau=tau, seed=args.seed)
        for name, net in nets.items()
    },
    **baselines,
    **posthoc,
}
y_flat = y_test.squeeze(1)


def interval_scores(lower, upper):
    return ((lower <= y_flat) & (y_flat <= upper)).float().mean(), (upper - lower).mean()


def fixed(model):
    """The model as a predictor x -> Prediction (SWAG's draws restart at the seed each call)."""
    return lambda points: predict(model, points)


for name, model in predictors.items():
    pred = test_predictions[name]
    cover, width = interval_scores(
        (pred.mean - Z90 * pred.std).squeeze(1), (pred.mean + Z90 * pred.std).squeeze(1)
    )
    results[f"{name}_gaussian90_coverage"], results[f"{name}_gaussian90_width"] = cover, width
    for score in ("absolute", "normalized"):
        cp = SplitConformalRegressor(fixed(model), alpha=ALPHA, score=score).calibrate(x_cal, y_cal)
        cover, width = interval_scores(*cp.predict(x_test))
        results[f"{name}_conformal_{score}_coverage"] = cover
        results[f"{name}_conformal_{score}_width"] = width
results["conformal_alpha"], results["n_calibration"] = ALPHA, len(x_cal)

# coverage against α: conformal (both scores) and the raw Gaussian band, MC dropout's two nets
alphas = torch.tensor([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
normal = torch.distributions.Normal(0.0, 1.0)
curve_labels = {
    "gaussian": "Gaussian band, mean ± zσ (raw)",
    "absolute": "conformal, absolute score",
    "normalized": "conformal, normalised by σ",
}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
for ax, name in zip(axes, ("mc_dropout_relu", "mc_dropout_tanh")):
    pred, model = test_predictions[name], fixed(predictors[name])
    curves = {key: [] for key in curve_labels}
    for alpha in alphas.tolist():
        z = normal.icdf(torch.tensor(1 - alpha / 2))
        band = (pred.mean - z * pred.std).squeeze(1), (pred.mean + z * pred.std).squeeze(1)
        curves["gaussian"].append(interval_scores(*band)[0])
        for score in ("absolute", "normalized"):
            cp = SplitConformalRegressor(model, alpha=alpha, score=score).calibrate(x_cal, y_cal)
            curves[score].append(interval_scores(*cp.predict(x_test))[0])
    for k, (key, values) in enumerate(curves.items()):
        results[f"{name}_coverage_vs_alpha_{key}"] = torch.stack(values)
        coverage_curve(
            ax,
            alphas,
            torch.stack(values),
            n_calibration=len(x_cal) if k == 1 else None,
            label=curve_labels[key],
            color=f"C{k}",
        )
    ax.set_title(f"{short[name]}: {len(x_test)} test points, n = {len(x_cal)} calibration")
    ax.legend(fontsize=8, loc="lower right")
results["coverage_alphas"] = alphas
fig.suptitle("x·sin x: observed coverage of 1 − α intervals, in range (|x| ≤ 5)")
fig.tight_layout()
save_figure(fig, args.out, "mc_dropout_regression_coverage")

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
        for name in [*predictions, *posthoc]
    },
    header="method",
)
print_table(
    f"90 % intervals on the {len(x_test)} test points (conformal: n = {len(x_cal)} calibration "
    "points, α = 0.1)",
    {
        name: {
            "Gaussian cover": results[f"{name}_gaussian90_coverage"],
            "width": results[f"{name}_gaussian90_width"],
            "conf. abs. cover": results[f"{name}_conformal_absolute_coverage"],
            "width ": results[f"{name}_conformal_absolute_width"],
            "conf. norm. cover": results[f"{name}_conformal_normalized_coverage"],
            "width  ": results[f"{name}_conformal_normalized_width"],
        }
        for name in predictors
    },
    header="method",
)
