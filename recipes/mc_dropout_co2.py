"""MC dropout on the Mauna Loa CO₂ record (notes ch. 21, figures 21.3–21.6): a dropout net's
point prediction, the same net's MC-dropout predictive intervals with ReLU, a GP with a squared
exponential kernel, and MC dropout with tanh, all extrapolating past the training years.

Net: 5 hidden layers × 1024 units, dropout 0.1 after each hidden weight layer (smaller under
--quick), MSE, Adam, full batch. Data: centred and normalised; the years after 1990 are held out
(the record ends in 2001). As in the notes, the predictions run on to a test point far from the
data (the red dashed line, 2025: as far past the split as the training years span), where the
standard net answers with no doubt at all and MC dropout with ReLU grows its band.

Beyond MC dropout: last-layer Laplace and SWAG on the same two nets, and split conformal 90 %
intervals calibrated on the months the every-2nd-month subsampling leaves out before 1990, scored
on the other left-out months (where the guarantee holds) and on the held-out years (where it does
not: extrapolation is not exchangeable with the past).
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import (
    SWAG,
    GPRegressor,
    LastLayerLaplace,
    MCDropout,
    SplitConformalRegressor,
    Supervised,
    SWAGCallback,
    tau_from,
)
from ebm.data import mauna_loa_co2
from ebm.metrics import crps_gaussian, gaussian_nll, interval_coverage
from ebm.plot import uncertainty_band, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()
width, depth = (64, 3) if args.quick else (1024, 5)
epochs = 100 if args.quick else 400
p_drop, weight_decay = 0.1, 1e-5
torch.manual_seed(args.seed)

# data: normalised years and CO₂; train before 1990, held out 1990-2001, predict on to 2030
FAR_YEAR, HORIZON = 2025.0, 2030.0
data = mauna_loa_co2(split_year=1990.0, every=2)


def normalised(year):
    return torch.tensor([[(year - data.x_mean) / data.x_std]])


far_point = normalised(FAR_YEAR)
grid = torch.linspace(data.x_train.min().item(), normalised(HORIZON).item(), 500).view(-1, 1)


def dropout_net(activation):
    layers, width_in = [], 1
    for _ in range(depth):
        layers += [nn.Linear(width_in, width), activation(), nn.Dropout(p_drop)]
        width_in = width
    return nn.Sequential(*layers, nn.Linear(width, 1))


def train(net, callbacks=()):
    model = Supervised(net, loss="mse", optimizer="adam", lr=1e-3, weight_decay=weight_decay)
    trainer = Trainer(
        max_epochs=epochs,
        batch_size=None,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        callbacks=callbacks,
    )
    trainer.fit(model, (data.x_train, data.y_train))
    return net.cpu()


# SWAG collects the weights along the same runs (second half, every 10th epoch); the callback
# only reads them: the training is unchanged
tau = tau_from(1.0, keep_prob=1 - p_drop, n_data=len(data.x_train), weight_decay=weight_decay)
swag_callbacks = {
    name: SWAGCallback(start_epoch=epochs // 2, collect_every=10, max_rank=20)
    for name in ("relu", "tanh")
}
nets = {
    name: train(dropout_net(activation), callbacks=[swag_callbacks[name]])
    for name, activation in (("relu", nn.ReLU), ("tanh", nn.Tanh))
}
mc = {name: MCDropout(net, n_samples=100, tau=tau, seed=args.seed) for name, net in nets.items()}
gp = GPRegressor(n_steps=40 if args.quick else 1000, device=args.device).fit(
    data.x_train, data.y_train
)
nets["relu"].eval()
with torch.no_grad():
    point = nets["relu"](grid)  # the standard dropout net: dropout off, no uncertainty

predictions = {
    "relu": mc["relu"].predict(grid),
    "gp": gp.predict(grid),
    "tanh": mc["tanh"].predict(grid),
}

# figures 21.3–21.6 on one page, in years and ppmv, one scale that holds every band
years = data.years(grid).squeeze(1)
split = data.years(data.x_test[:1]).item()
panels = [
    ("standard dropout net, ReLU (fig. 21.3)", None),
    ("MC dropout, ReLU (fig. 21.4)", "relu"),
    ("GP, squared exponential kernel (fig. 21.5)", "gp"),
    ("MC dropout, tanh (fig. 21.6)", "tanh"),
]
ppm_std = data.y_std  # a normalised σ times this is a σ in ppmv
low = min(float(data.ppmv(p.mean - 2 * p.std).min()) for p in predictions.values())
high = max(float(data.ppmv(p.mean + 2 * p.std).max()) for p in predictions.values())
low, high = min(low, float(data.ppmv(point).min())), max(high, float(data.ppmv(point).max()))
pad = 0.04 * (high - low)
fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True, sharey=True)
for ax, (title, key) in zip(axes.flatten(), panels):
    if key is None:
        ax.plot(years, data.ppmv(point).squeeze(1), color="C1", label="prediction (eval mode)")
    else:
        pred = predictions[key]
        uncertainty_band(
            ax,
            years,
            data.ppmv(pred.mean),
            pred.std * ppm_std,
            k=2.0,
            color="C1",
            label="predictive mean",
            band_label="mean ± 2σ",
        )
    ax.plot(
        data.years(data.x_train).squeeze(1),
        data.ppmv(data.y_train).squeeze(1),
        ".",
        color="C3",
        ms=2.5,
        label="training data",
    )
    ax.plot(
        data.years(data.x_test).squeeze(1),
        data.ppmv(data.y_test).squeeze(1),
        ".",
        color="0.55",
        ms=2.5,
        label="held out",
    )
    ax.axvline(split, color="C0", ls="--", lw=1, label="end of training data")
    ax.axvline(FAR_YEAR, color="C3", ls="--", lw=1, label=f"far-away test point ({FAR_YEAR:.0f})")
    ax.set_title(title)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(years[0].item(), HORIZON)
handles = {}
for ax in axes.flat[:2]:
    for handle, text in zip(*ax.get_legend_handles_labels()):
        handles.setdefault(text, handle)
fig.legend(handles.values(), handles.keys(), loc="lower center", ncols=4, frameon=False)
for ax in axes[1]:
    ax.set_xlabel("year")
for ax in axes[:, 0]:
    ax.set_ylabel("CO₂ (ppmv)")
fig.tight_layout(rect=(0, 0.07, 1, 1))
save_figure(fig, args.out, "mc_dropout_co2")

# numbers over the extrapolation region (the held-out years)
held_out = {
    "mc_dropout_relu": mc["relu"].predict(data.x_test),
    "gp": gp.predict(data.x_test),
    "mc_dropout_tanh": mc["tanh"].predict(data.x_test),
}
results = {"width": width, "depth": depth, "epochs": epochs, "tau": tau}
for name, pred in held_out.items():
    results[f"{name}_crps_extrapolation"] = crps_gaussian(data.y_test, pred.mean, pred.var)
    results[f"{name}_nll_extrapolation"] = gaussian_nll(data.y_test, pred.mean, pred.var)
    results[f"{name}_coverage95_extrapolation"] = interval_coverage(
        data.y_test, pred.mean, pred.var, 0.95
    )
    results[f"{name}_std_extrapolation_mean"] = pred.std.mean()
inside = mc["relu"].predict(data.x_train)
results["mc_dropout_relu_std_train_mean"] = inside.std.mean()
# the far-away test point (normalised units, as every number here)
results["far_point_year"] = FAR_YEAR
with torch.no_grad():
    results["standard_net_at_far_point"] = nets["relu"](far_point).squeeze()
far = {
    "mc_dropout_relu": mc["relu"].predict(far_point),
    "gp": gp.predict(far_point),
    "mc_dropout_tanh": mc["tanh"].predict(far_point),
}
for name, pred in far.items():
    results[f"{name}_mean_at_far_point"] = pred.mean.squeeze()
    results[f"{name}_std_at_far_point"] = pred.std.squeeze()
results["gp_lengthscale"] = gp.lengthscale_
# ---- issue 17: last-layer Laplace and SWAG on the two dropout nets; split conformal intervals ----
# Laplace: a Gaussian over the last Linear(width, 1) (eval mode), full GGN, prior precision from
# the evidence, σ = the eval-mode net's RMS residual on the training months (the noise's maximum-
# likelihood value at θ*). SWAG: 30 samples of all the weights, τ⁻¹ added as observation noise.
posthoc = {}
for name, net in nets.items():
    net.eval()
    with torch.no_grad():
        sigma = (net(data.x_train) - data.y_train).pow(2).mean().sqrt().clamp_min(1e-3).item()
    laplace = LastLayerLaplace(net, "regression", sigma_noise=sigma)
    posthoc[f"laplace_{name}"] = laplace.fit(data.x_train, data.y_train).optimize_prior_precision()
    results[f"laplace_{name}_sigma_noise"] = sigma
    results[f"laplace_{name}_prior_precision"] = laplace.prior_precision
for name, net in nets.items():
    posthoc[f"swag_{name}"] = SWAG(net, swag_callbacks[name], noise_var=1.0 / tau)
    results[f"swag_{name}_snapshots"] = swag_callbacks[name].n_collected


def predict(model, points):
    """One Prediction; SWAG draws 30 weight samples from a generator seeded afresh at each call."""
    if isinstance(model, SWAG):
        generator = torch.Generator().manual_seed(args.seed)
        return model.predict(points, n_samples=30, generator=generator)
    return model.predict(points)


for name, model in posthoc.items():
    pred = predict(model, data.x_test)
    results[f"{name}_crps_extrapolation"] = crps_gaussian(data.y_test, pred.mean, pred.var)
    results[f"{name}_nll_extrapolation"] = gaussian_nll(data.y_test, pred.mean, pred.var)
    results[f"{name}_coverage95_extrapolation"] = interval_coverage(
        data.y_test, pred.mean, pred.var, 0.95
    )
    results[f"{name}_std_extrapolation_mean"] = pred.std.mean()
    results[f"{name}_std_at_far_point"] = predict(model, far_point).std.squeeze()
    held_out[name] = pred

# split conformal at α = 0.1. Calibration points: the months the every-2nd-month subsampling left
# out before 1990 (disjoint from the training months and from the held-out years), split at random
# in two: one half calibrates, the other is an in-range test, exchangeable with it, where the
# guarantee holds. Over the held-out years 1990–2001 it does NOT: they are not exchangeable with
# months before 1990 (extrapolation), and the coverage there says how far that carries.
ALPHA, Z90 = 0.1, 1.6448536269514722  # Φ⁻¹(0.95): mean ± zσ holds 90 % of a Gaussian
monthly = mauna_loa_co2(split_year=1990.0, every=1)
x_left = (monthly.years(monthly.x_train[1::2]) - data.x_mean) / data.x_std
y_left = (monthly.ppmv(monthly.y_train[1::2]) - data.y_mean) / data.y_std
order = torch.randperm(len(x_left), generator=torch.Generator().manual_seed(args.seed + 2))
cal, in_range = order[: len(order) // 2], order[len(order) // 2 :]
x_cal, y_cal = x_left[cal], y_left[cal]
tests = {
    "in_range": (x_left[in_range], y_left[in_range]),
    "extrapolation": (data.x_test, data.y_test),
}
predictors = {
    "mc_dropout_relu": mc["relu"],
    "gp": gp,
    "mc_dropout_tanh": mc["tanh"],
    **posthoc,
}


def interval_scores(lower, upper, targets):
    targets = targets.squeeze(1)
    return ((lower <= targets) & (targets <= upper)).float().mean(), (upper - lower).mean()


def fixed(model):
    return lambda points: predict(model, points)


for name, model in predictors.items():
    conformal = {
        score: SplitConformalRegressor(fixed(model), alpha=ALPHA, score=score).calibrate(
            x_cal, y_cal
        )
        for score in ("absolute", "normalized")
    }
    for where, (x_where, y_where) in tests.items():
        pred = predict(model, x_where)
        band = (pred.mean - Z90 * pred.std).squeeze(1), (pred.mean + Z90 * pred.std).squeeze(1)
        cover, width = interval_scores(*band, y_where)
        results[f"{name}_gaussian90_coverage_{where}"] = cover
        results[f"{name}_gaussian90_width_{where}"] = width
        for score, cp in conformal.items():
            cover, width = interval_scores(*cp.predict(x_where), y_where)
            results[f"{name}_conformal_{score}_coverage_{where}"] = cover
            results[f"{name}_conformal_{score}_width_{where}"] = width
results["conformal_alpha"], results["n_calibration"] = ALPHA, len(x_cal)
results["n_test_in_range"] = len(in_range)

write_results(args.out, "mc_dropout_co2", results)
save_samples(
    args.out,
    "mc_dropout_co2",
    {
        "years": years,
        "standard_net": point,
        **{f"{name}/mean": p.mean for name, p in predictions.items()},
        **{f"{name}/std": p.std for name, p in predictions.items()},
        "x_train": data.x_train,
        "y_train": data.y_train,
        "x_test": data.x_test,
        "y_test": data.y_test,
    },
)
print_table(
    f"Mauna Loa CO₂, held-out years 1990-2001 and the far point {FAR_YEAR:.0f} (normalised units)",
    {
        name: {
            "CRPS": results[f"{name}_crps_extrapolation"],
            "NLL": results[f"{name}_nll_extrapolation"],
            "95% coverage": results[f"{name}_coverage95_extrapolation"],
            "σ held out": results[f"{name}_std_extrapolation_mean"],
            f"σ at {FAR_YEAR:.0f}": results[f"{name}_std_at_far_point"],
        }
        for name in held_out
    },
    header="method",
)
print_table(
    f"coverage of 90 % intervals: Gaussian mean ± 1.645σ, conformal (α = 0.1, n = {len(x_cal)} "
    f"months before 1990) absolute and normalised (and its width);\nin: {len(in_range)} other "
    "left-out months before 1990; 1990+: the held-out years",
    {
        name: {
            f"{label}: {column}": results[f"{name}_{key}_{where}"]
            for where, label in (("in_range", "in"), ("extrapolation", "1990+"))
            for column, key in (
                ("Gauss", "gaussian90_coverage"),
                ("abs.", "conformal_absolute_coverage"),
                ("norm.", "conformal_normalized_coverage"),
                ("width", "conformal_normalized_width"),
            )
        }
        for name in predictors
    },
    header="method",
)
