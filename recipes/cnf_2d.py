"""A continuous normalising flow on two moons, trained by exact maximum likelihood and by flow
matching.

dy/dt = f_θ(y, t) moves N(0, I) onto the data; the log-density change is −∫ tr(∂f/∂y) dt, here
with the exact trace (2-D). Flows are explicit density models with exact likelihoods (the Warwick
slides call them implicit: see ERRATA), so we report the test log-likelihood and draw the
flow's energy E(y) = −log p(y) itself, low = dark as every energy in the gallery. Maximum
likelihood trains through a fixed-step RK4 solver. Flow matching (Lipman et al. 2023) trains the
same field by regression on straight base-to-data paths, with independent or minibatch
optimal-transport pairs, without any ODE solve; its exact likelihood afterwards comes through the
same ODE. Every model is evaluated with the adaptive dopri5 at the same tolerances.
Training time is the process's CPU time (with OMP_NUM_THREADS=1: single-threaded compute), which
other jobs on a shared machine do not inflate; the wall time is recorded beside it.
"""

import time

import matplotlib.pyplot as plt
import torch

from ebm.data import two_moons
from ebm.models import CNF
from ebm.plot import energy_landscape, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()
torch.manual_seed(args.seed)
train = two_moons(5000, noise=0.05, generator=torch.Generator().manual_seed(args.seed))
test = two_moons(
    2000 if not args.quick else 500,
    noise=0.05,
    generator=torch.Generator().manual_seed(args.seed + 1),
)
mean, std = train.mean(0), train.std(0)  # standardise: the flow starts from N(0, I)
log_det = std.log().sum()  # y = mean + std·u: log p(y) = log p(u) − Σ log std

# (objective, pairing, steps, EMA decay): the step counts were set before any test evaluation,
# from the per-step costs (flow matching's step needs no ODE solve; OT pairing adds an O(B³)
# assignment per batch), so that each flow-matching run costs well under 1/5 of maximum likelihood
RUNS = {
    "likelihood": ("likelihood", "independent", 40 if args.quick else 1500, None),
    "flow_matching_independent": (
        "flow_matching",
        "independent",
        200 if args.quick else 10000,
        0.99 if args.quick else 0.999,
    ),
    "flow_matching_ot": (
        "flow_matching",
        "ot",
        60 if args.quick else 3000,
        0.99 if args.quick else 0.999,
    ),
}
LABELS = {
    "likelihood": "maximum likelihood",
    "flow_matching_independent": "flow matching, independent pairs",
    "flow_matching_ot": "flow matching, minibatch OT pairs",
}


def fit(objective, pairing, steps, ema_decay):
    torch.manual_seed(args.seed)  # the same initial field for every objective
    model = CNF(
        2,
        hidden=(64, 64, 64),
        method="rk4",
        step_size=0.1,
        lr=3e-3,
        objective=objective,
        pairing=pairing,
    )
    trainer = Trainer(
        max_epochs=None,
        max_steps=steps,
        batch_size=256,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
        ema_decay=ema_decay,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, (train - mean) / std)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if trainer.ema is not None:
        trainer.ema.copy_to(model)  # evaluate the weight average
    model.eval()
    model.method, model.step_size, model.rtol, model.atol = "dopri5", None, 1e-5, 1e-5
    device = trainer.device
    with torch.no_grad():
        test_ll = float((model.log_prob(((test - mean) / std).to(device)).cpu() - log_det).mean())
        g = torch.Generator(device=device).manual_seed(args.seed)
        samples = model.sample(1000 if args.quick else 3000, generator=g).cpu() * std + mean
    result = {
        "steps": steps,
        "ema_decay": ema_decay,
        "test_log_likelihood": test_ll,
        "train_cpu_seconds": cpu,
        "train_wall_seconds": wall,
    }
    return model, samples, result


models, samples, results = {}, {}, {}
for name, run in RUNS.items():
    models[name], samples[name], results[name] = fit(*run)
ml = results["likelihood"]
for name in ("flow_matching_independent", "flow_matching_ot"):
    r = results[name]
    r["log_likelihood_gap_to_likelihood"] = ml["test_log_likelihood"] - r["test_log_likelihood"]
    r["cpu_speedup_over_likelihood"] = ml["train_cpu_seconds"] / r["train_cpu_seconds"]
    r["wall_speedup_over_likelihood"] = ml["train_wall_seconds"] / r["train_wall_seconds"]
    r["target_met"] = bool(
        r["log_likelihood_gap_to_likelihood"] <= 0.05 and r["cpu_speedup_over_likelihood"] >= 5
    )

# the best Gaussian for scale: mean and covariance of the training points (maximum likelihood)
gaussian = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T, correction=0))
gaussian_test_ll = float(gaussian.log_prob(test).mean())


def log_density(model):
    def f(y):
        return model.log_prob((y - mean.to(y)) / std.to(y)) - log_det.to(y)

    return f


xlim, ylim = (-1.5, 2.5), (-1.0, 1.5)
CAP = 8.0  # nats: p(y) below e^−8 ≈ 3e−4 is drawn in the top colour
FLOOR = -1.5  # nats: one colour scale [FLOOR, CAP] for the compared −log p panels
fig, axes = plt.subplots(3, 2, figsize=(7.6, 8.4), sharex=True, sharey=True)
for row, name in zip(axes, RUNS):
    r = results[name]
    s = samples[name]
    row[0].scatter(test[:, 0], test[:, 1], s=2, alpha=0.3, c="0.45", linewidths=0, label="test")
    row[0].scatter(s[:, 0], s[:, 1], s=2, alpha=0.5, c="C1", linewidths=0, label="samples")
    row[0].set_title(f"{LABELS[name]}\n{len(s)} samples (orange), test (grey)", fontsize=9)
    with torch.no_grad():
        energy_landscape(
            row[1],
            lambda y, m=models[name]: -log_density(m)(y),
            xlim,
            ylim,
            n=30 if args.quick else 120,
            vmin=FLOOR,
            vmax=CAP,
            label="−log p(y) (nats)",
            title=(
                f"E(y) = −log p(y): test log-lik. {r['test_log_likelihood']:.3f}\n"
                f"training {r['train_cpu_seconds']:.0f} s CPU, {r['steps']} steps"
            ),
        )
    row[1].title.set_fontsize(9)
    row[0].set_ylabel("y₂")
    row[1].set_ylabel(None)
for ax in axes.flat:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1, 2])
for ax in axes[:-1].flat:
    ax.set_xlabel(None)
for ax in axes[-1]:
    ax.set_xlabel("y₁")
fig.suptitle("Continuous normalising flows on two moons: maximum likelihood vs flow matching")
fig.tight_layout()
save_figure(fig, args.out, "cnf_2d")
save_samples(
    args.out,
    "cnf_2d",
    {
        "test_data": test,
        "samples": samples["likelihood"],
        "samples_flow_matching_independent": samples["flow_matching_independent"],
        "samples_flow_matching_ot": samples["flow_matching_ot"],
    },
)
write_results(
    args.out,
    "cnf_2d",
    {
        "steps": ml["steps"],
        "test_log_likelihood": ml["test_log_likelihood"],
        "gaussian_test_log_likelihood": gaussian_test_ll,
        "runs": results,
    },
)
rows = {
    LABELS[n]: {
        "steps": r["steps"],
        "test log-lik.": r["test_log_likelihood"],
        "train CPU s": r["train_cpu_seconds"],
        "train wall s": r["train_wall_seconds"],
    }
    for n, r in results.items()
}
rows["best Gaussian (fitted to the training points)"] = {"test log-lik.": gaussian_test_ll}
print_table(
    f"CNFs on two moons: test log-likelihood (nats per point, {len(test)} points), training time",
    rows,
    header="objective",
)
