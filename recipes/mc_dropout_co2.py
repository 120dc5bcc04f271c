"""MC dropout on the Mauna Loa CO₂ record (notes ch. 21, figures 21.3–21.6): a dropout net's
point prediction, the same net's MC-dropout predictive intervals with ReLU, a GP with a squared
exponential kernel, and MC dropout with tanh, all extrapolating past the training years.

Net: 5 hidden layers × 1024 units, dropout 0.1 after each hidden weight layer (smaller under
--quick), MSE, Adam, full batch. Data: centred and normalised; the years after 1990 are held out.
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import GPRegressor, MCDropout, Supervised, tau_from
from ebm.data import mauna_loa_co2
from ebm.metrics import crps_gaussian, gaussian_nll, interval_coverage
from ebm.plot import uncertainty_band
from ebm.recipe import parse_args, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__.splitlines()[0])
width, depth = (64, 3) if args.quick else (1024, 5)
epochs = 100 if args.quick else 400
p_drop, weight_decay = 0.1, 1e-5
torch.manual_seed(args.seed)

# data: normalised years and CO₂; train before 1990, extrapolate to 2002
data = mauna_loa_co2(split_year=1990.0, every=2)
x_all = torch.cat([data.x_train, data.x_test])
grid = torch.linspace(data.x_train.min().item(), data.x_test.max().item() + 0.5, 400).view(-1, 1)


def dropout_net(activation):
    layers, width_in = [], 1
    for _ in range(depth):
        layers += [nn.Linear(width_in, width), activation(), nn.Dropout(p_drop)]
        width_in = width
    return nn.Sequential(*layers, nn.Linear(width, 1))


def train(net):
    model = Supervised(net, loss="mse", optimizer="adam", lr=1e-3, weight_decay=weight_decay)
    trainer = Trainer(max_epochs=epochs, batch_size=None, device=args.device, seed=args.seed)
    trainer.fit(model, (data.x_train, data.y_train))
    return net.cpu()


tau = tau_from(1.0, keep_prob=1 - p_drop, n_data=len(data.x_train), weight_decay=weight_decay)
nets = {"relu": train(dropout_net(nn.ReLU)), "tanh": train(dropout_net(nn.Tanh))}
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

# figures 21.3–21.6 on one page, years on the x axis
years = data.years(grid).squeeze(1)
split = data.years(data.x_test[:1]).item()
panels = [
    ("standard dropout net, ReLU (fig. 21.3)", None),
    ("MC dropout, ReLU (fig. 21.4)", "relu"),
    ("GP, squared exponential kernel (fig. 21.5)", "gp"),
    ("MC dropout, tanh (fig. 21.6)", "tanh"),
]
fig, axes = plt.subplots(2, 2, figsize=(13, 8), sharex=True, sharey=True)
for ax, (title, key) in zip(axes.flatten(), panels):
    if key is None:
        ax.plot(years, point.squeeze(1), color="C1", label="prediction (eval mode)")
    else:
        pred = predictions[key]
        uncertainty_band(ax, years, pred.mean, pred.std, k=2.0, color="C1", label="mean ± 2σ")
    ax.plot(
        data.years(data.x_train).squeeze(1),
        data.y_train.squeeze(1),
        ".",
        color="C3",
        ms=3,
        label="training data",
    )
    ax.plot(
        data.years(data.x_test).squeeze(1),
        data.y_test.squeeze(1),
        ".",
        color="0.6",
        ms=3,
        label="held out",
    )
    ax.axvline(split, color="C0", ls="--", lw=1)
    ax.set_title(title)
    ax.set_ylim(-3, 5)
axes[0, 0].legend(loc="upper left", fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("year")
for ax in axes[:, 0]:
    ax.set_ylabel("CO₂ (normalised)")
fig.tight_layout()
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
results["gp_lengthscale"] = gp.lengthscale_
write_results(args.out, "mc_dropout_co2", results)
print({k: round(float(v), 4) for k, v in results.items()})
