"""GANs on toy data: the coin-flip GAN of the Warwick slides, then mode coverage on a ring of 8
and a grid of 25 Gaussians for every GAN loss in the library (VEEGAN's benchmark).

Coin flips: p(heads) = 0.3 (the slides' 0.7 belongs to another example). At the equilibrium the
discriminator can NOT tell real from fake: D = ½ and its cross-entropy is ln 2 (the notes' ch. 34
say the opposite; see ERRATA). Mode coverage: a sample is high quality within 3σ of a mode, a mode
is covered with at least 3 high-quality samples, out of 2500 samples (as VEEGAN).

``--replot`` redraws the figures from a finished run's ``<out>/<name>_samples.npz`` and
``<name>.json`` without training (a full run takes about 25 minutes on 2 CPU cores); ``--name``
(default ``gan_toy``) names every output, e.g. ``--seed 1 --name gan_toy_seed1``. The seed is
drawn in every title; a replot checks it against the saved data panel (drawn with seed + 1).
"""

import json
import math
import sys

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ebm.data import coin_flips, grid_of_gaussians, ring_of_gaussians
from ebm.data.toy2d import grid_centers, ring_centers
from ebm.energies import mlp
from ebm.metrics import mode_counts, mode_coverage
from ebm.models import GAN, BernoulliGenerator
from ebm.models.gan import LOSSES
from ebm.models.gan_losses import bce_discriminator_loss
from ebm.plot import mode_coverage_scatter, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument(
        "--losses", nargs="*", default=None, help=f"subset of {LOSSES} and nonsaturating+r1"
    )
    parser.add_argument("--steps", type=int, default=None, help="critic steps per run")
    parser.add_argument("--datasets", nargs="*", default=None, help="subset of ring-8 grid-25")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="redraw the figures from <out>/<name>_samples.npz and <name>.json; no training",
    )
    parser.add_argument("--name", default="gan_toy", help="prefix of every output file")


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
STD, N_EVAL, LATENT, HIDDEN, R1_WEIGHT = 0.02, 2500, 8, 128, 1.0

DATASETS = {
    "ring-8": (
        lambda n, seed: ring_of_gaussians(
            n, noise=STD, generator=torch.Generator().manual_seed(seed)
        ),
        ring_centers(),
    ),
    "grid-25": (
        lambda n, seed: grid_of_gaussians(
            n, noise=STD, generator=torch.Generator().manual_seed(seed)
        ),
        grid_centers(),
    ),
}
DATASETS = {name: DATASETS[name] for name in (args.datasets or DATASETS)}


# ---- plots: one figure per data set, samples over the modes (green covered, red missed) --------
def plot_modes(data_name, centers, panels, results):
    """panels: {"data" or a loss: samples (N, 2)}; results: {"<data>/<loss>": {"modes", ...}}."""
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(2.4 * ncols, 2.5 * nrows + 1.3),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    lim, ticks = (3, [-2, 0, 2]) if data_name == "ring-8" else (5.5, [-4, -2, 0, 2, 4])
    for ax, (title, pts) in zip(axes.flat, panels.items()):
        covered = mode_counts(pts, centers, STD) >= 3
        r = results.get(f"{data_name}/{title}")
        label = (
            f"{title}\n{r['modes']}/{r['of']} modes, {100 * r['high_quality']:.0f}% HQ"
            if r
            else f"{data_name}: data\n{int(covered.sum())}/{len(centers)} modes"
        )
        mode_coverage_scatter(ax, pts, centers, covered, lim=lim, title=label)
        ax.set(xticks=ticks, yticks=ticks)
    for ax in axes[-1]:
        ax.set_xlabel("y₁")
    for ax in axes[:, 0]:
        ax.set_ylabel("y₂")
    handles = [
        plt.Line2D([], [], ls="", marker="o", mfc="none", mec=c, mew=1.3, ms=8, label=t)
        for c, t in (("C2", "mode covered (≥ 3 samples within 3σ)"), ("C3", "mode missed"))
    ] + [plt.Line2D([], [], ls="", marker=".", color="C0", label=f"{N_EVAL} samples")]
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, ncols), frameon=False)
    fig.suptitle(
        f"GAN losses on {data_name}, seed {args.seed} (σ = {STD}, HQ = within 3σ of a mode)"
    )
    save_figure(fig, args.out, f"{args.name}_{data_name}")


def plot_coin(real_coins, fake_coins, head_freq, coin_d_loss):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist(
        [real_coins.cpu().flatten().numpy(), fake_coins.cpu().flatten().numpy()],
        bins=[-0.25, 0.25, 0.75, 1.25],
        label=["real flips", "GAN samples"],
        weights=[np.full(len(real_coins), 1 / len(real_coins))] * 2,
    )
    ax.set_xticks([0, 1], ["tails (0)", "heads (1)"])
    ax.set_xlabel("outcome")
    ax.set_ylabel("frequency")
    ax.set_title(
        f"coin-flip GAN, seed {args.seed}: heads {head_freq:.3f} (p = 0.3)\n"
        f"D cross-entropy {coin_d_loss:.3f} vs ln 2 = {math.log(2):.3f}"
    )
    ax.legend()
    save_figure(fig, args.out, f"{args.name}_coin")


def print_tables(head_freq, coin_d_loss, results, steps):
    print_table(
        "coin-flip GAN",
        {
            "p(heads) generated (target 0.3)": head_freq,
            f"discriminator BCE (ln 2 = {math.log(2):.4f})": coin_d_loss,
        },
    )
    print_table(
        f"mode coverage, {N_EVAL} samples after {steps} steps",
        {
            key: {"modes": f"{r['modes']}/{r['of']}", "high quality": r["high_quality"]}
            for key, r in results.items()
        },
        header="data/loss",
    )


if args.replot:  # the figures of a finished run, from its samples and numbers
    with np.load(args.out / f"{args.name}_samples.npz") as saved:
        arrays = {key: torch.from_numpy(saved[key]) for key in saved.files}
    numbers = json.loads((args.out / f"{args.name}.json").read_text())
    if numbers.get("seed", args.seed) != args.seed:
        raise ValueError(f"--seed {args.seed}, but {args.name}.json says seed {numbers['seed']}")
    for data_name, (make_data, centers) in DATASETS.items():
        # the data panel was drawn with seed + 1: it tells whether --seed is the run's seed
        saved_data = arrays.get(f"{data_name}/data")
        if saved_data is not None and not torch.equal(
            saved_data, make_data(N_EVAL, args.seed + 1).to(saved_data.dtype)
        ):
            raise ValueError(
                f"--seed {args.seed} does not match {args.name}_samples.npz: its {data_name} "
                "data panel was drawn with another seed"
            )
        panels = {
            key.split("/", 1)[1]: value
            for key, value in arrays.items()
            if key.startswith(f"{data_name}/")
        }
        plot_modes(data_name, centers, panels, numbers["mode_coverage"])
    head_freq, coin_d_loss = numbers["coin_head_frequency"], numbers["coin_discriminator_bce"]
    plot_coin(arrays["coin/real"], arrays["coin/generated"], head_freq, coin_d_loss)
    print_tables(head_freq, coin_d_loss, numbers["mode_coverage"], numbers["steps_per_run"])
    sys.exit(0)

# ---- 1. the coin-flip GAN ----------------------------------------------------------------------
# The data are exact 0/1 values. A generator with a real-valued output never produces exactly 0 or
# 1, so the discriminator can always separate real from fake and its loss stays below ln 2. The
# BernoulliGenerator draws exact 0/1 flips with a learnt p(heads) (straight-through gradient); on
# two points an affine logit is the most general discriminator, and R1 = a² damps the game's
# oscillation, so p(heads) -> 0.3 and D -> ½ everywhere.
torch.manual_seed(args.seed)
coins = coin_flips(1024, p_heads=0.3, generator=torch.Generator().manual_seed(args.seed))
coin_gan = GAN(
    BernoulliGenerator(1),
    nn.Linear(1, 1),
    latent_dim=1,
    loss="nonsaturating",
    lr=1e-2,
    betas=(0.5, 0.9),
    r1_weight=1.0,
)
coin_steps = 1500
Trainer(
    max_steps=coin_steps,
    max_epochs=None,
    batch_size=64,
    device=args.device,
    precision=args.precision,
    seed=args.seed,
    progress=False,
).fit(coin_gan, coins)
g = torch.Generator(device=next(coin_gan.parameters()).device).manual_seed(args.seed)
with torch.no_grad():
    fake_coins = coin_gan.sample(20000, generator=g)
    real_coins = coin_flips(
        20000, p_heads=0.3, generator=torch.Generator().manual_seed(args.seed + 1)
    ).to(fake_coins.device)
    head_freq = fake_coins.mean().item()
    coin_d_loss = bce_discriminator_loss(
        coin_gan.logits(real_coins), coin_gan.logits(fake_coins)
    ).item()

# ---- 2. mode coverage on the ring and the grid, for every loss ----------------------------------
# Per-loss settings: WGAN-GP takes 5 critic steps per generator step and Adam β₁ = 0.5, β₂ = 0.9.
# "nonsaturating+r1" adds Mescheder et al.'s zero-centred R1 penalty (γ/2)·E‖∇d(x)‖² on real data.
SETTINGS = {
    "minimax": {"loss": "minimax", "lr": 1e-3},
    "nonsaturating": {"loss": "nonsaturating", "lr": 1e-3},
    "nonsaturating+r1": {"loss": "nonsaturating", "lr": 1e-3, "r1_weight": R1_WEIGHT},
    "wgan-gp": {"loss": "wgan-gp", "lr": 1e-3, "n_critic": 5, "betas": (0.5, 0.9)},
    "hinge": {"loss": "hinge", "lr": 1e-3},
    "ebgan": {"loss": "ebgan", "lr": 1e-3, "margin": 0.5},
}
losses = args.losses or (["nonsaturating+r1"] if args.quick else list(SETTINGS))
steps = args.steps or (300 if args.quick else 20000)
results, scatters = {}, {}
for data_name, (make_data, centers) in DATASETS.items():
    data = make_data(50000, args.seed)
    for loss in losses:
        torch.manual_seed(args.seed)
        settings = dict(SETTINGS[loss])
        out_dim = 2 if settings["loss"] == "ebgan" else 1  # EBGAN's discriminator is an autoencoder
        gan = GAN(
            mlp([LATENT, HIDDEN, HIDDEN, HIDDEN, 2], nn.ReLU),
            mlp([2, HIDDEN, HIDDEN, HIDDEN, out_dim], nn.LeakyReLU),
            latent_dim=LATENT,
            lr_decay_steps=steps,  # anneal both learning rates to 0: the game settles at the end
            **settings,
        )
        trainer = Trainer(  # one step = one critic update (and a generator update every n_critic)
            max_steps=steps,
            max_epochs=None,
            batch_size=256,
            device=args.device,
            precision=args.precision,
            seed=args.seed,
            progress=False,
        )
        trainer.fit(gan, data)
        g = torch.Generator(device=trainer.device).manual_seed(args.seed)
        samples = gan.sample(N_EVAL, generator=g).cpu()
        covered, quality = mode_coverage(samples, centers, STD)
        results[f"{data_name}/{loss}"] = {
            "modes": covered,
            "of": len(centers),
            "high_quality": quality,
        }
        scatters[(data_name, loss)] = samples

# ---- plots and samples -------------------------------------------------------------------------
samples_out = {"coin/real": real_coins, "coin/generated": fake_coins}
for data_name, (make_data, centers) in DATASETS.items():
    panels = {"data": make_data(N_EVAL, args.seed + 1)}
    panels.update({loss: scatters[(data_name, loss)] for loss in losses})
    plot_modes(data_name, centers, panels, results)
    samples_out.update({f"{data_name}/{name}": pts for name, pts in panels.items()})
save_samples(args.out, args.name, samples_out)
plot_coin(real_coins, fake_coins, head_freq, coin_d_loss)


def best(data_name):
    rows = {k.split("/")[1]: v for k, v in results.items() if k.startswith(data_name)}
    name = max(rows, key=lambda k: (rows[k]["modes"], rows[k]["high_quality"]))
    return {"loss": name, **rows[name]}


write_results(
    args.out,
    args.name,
    {
        "seed": args.seed,
        "coin_head_frequency": head_freq,
        "coin_training_head_frequency": coins.float().mean().item(),
        "coin_discriminator_bce": coin_d_loss,
        "ln2": math.log(2),
        "steps_per_run": steps,
        "mode_coverage": results,
        "best": {name: best(name) for name in DATASETS},
        "veegan_reference": {
            "ring-8": {
                "GAN": 1.0,
                "Unrolled GAN": 7.6,
                "VEEGAN": 8.0,
                "VEEGAN_high_quality": 0.529,
            },
            "grid-25": {"VEEGAN": 24.6, "VEEGAN_high_quality": 0.40},
        },
    },
)
print_tables(head_freq, coin_d_loss, results, steps)
