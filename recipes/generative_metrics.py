"""Performance assessment of generative models (the Warwick slides): every generative model of the
library, trained on the same data, scored by the same metrics on the same held-out points.

Data: two 2-D toys (a ring of 8 Gaussians, radius 2, σ = 0.1; two moons, noise 0.05) and
scikit-learn's 8×8 digits (the canonical 1438 / 359 split). Every model is trained on the same
training draw and scored on the same held-out draw, with the same number of samples; a
"data" row (a second held-out draw; for the digits the first 359 training images) is the floor of
every metric at that sample size, a "noise" row (uniform on the EBM's box; uniform pixels) the
ceiling.

Metrics (``ebm.metrics``), samples against the held-out points:
- MMD² (unbiased, RBF kernel with ONE bandwidth per data set for every row: the median
  distance between held-out points) and the energy distance (Székely, squared form); on the
  digits both on the 64 raw pixels;
- mode coverage: ring-8, modes holding ≥ 3 samples within 3σ and the fraction of samples within
  3σ of a mode (VEEGAN's); two moons, the fraction within 3× the noise of a fresh 20 000-point
  data draw; digits, the digit classes (read by the repository's classifier) that hold ≥ 5 % of
  the samples;
- the Fréchet distance: of Gaussians fitted to the 2-D points; on the digits, on the
  classifier's features (``frechet_classifier_distance``);
- the log-likelihood of the held-out points, nats per point, where the model has one: the CNF's
  is exact (dopri5, rtol = atol = 1e-5); the VAE's is a lower bound (IWAE with K = 256 2-D,
  K = 64 digits; the ELBO beside it); the EBM's density is exp(−E)/Z on its box (its sampler
  is clamped there) and log Z comes from annealed importance sampling, ± its standard error,
  sandwiched by reverse AIS from grid draws of exp(−E) (``ebm.sampling.ais``/``reverse_ais``)
  and checked against quadrature on a 400 × 400 grid; the diffusion model's is the exact density
  of its probability-flow ODE (``Diffusion.log_prob``: the model that ``sample(method="ode")``
  draws from, dopri5, rtol = atol = 1e-5; its samples here are the ancestral chain's, whose
  marginals are the same only for a perfect ε_θ); the GAN has no density ("—"). On the digits the CNF and the diffusion model see
  the dequantised pixels (grey level k spread uniformly over [k/17, (k + 1)/17)), and theirs are
  densities of the dequantised test images on [0, 1)⁶⁴ (the diffusion model's through the
  Jacobian 2⁶⁴ of its [−1, 1] pixels, with Hutchinson's trace), comparable with the noise row's
  uniform density (0 nats); the VAE's bound is the Bernoulli likelihood of the grey levels, not a
  density: comparable with nothing else;
- the sampling time: wall time to draw the samples, one thread (``torch.set_num_threads(1)``),
  on a shared, loaded machine: compare the rows, not the absolute numbers.

Budgets are SHORT (the whole run takes minutes): each model's own recipe trains longer and does
better (the JSON records every budget and which recipe measures the same number).
Missing: the EBM on the digits (a 64-D EBM needs a long run of its own: ``jem_digits``).
"""

import json
import math
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ebm.data import digits, ring_of_gaussians, two_moons
from ebm.data.toy2d import ring_centers
from ebm.energies import MLPEnergy, mlp
from ebm.metrics import (
    energy_distance,
    frechet_classifier_distance,
    frechet_distance,
    mmd,
    mode_coverage,
    near_data_fraction,
)
from ebm.metrics.frechet import digit_classifier
from ebm.models import CNF, EBM, GAN, VAE, Diffusion
from ebm.models.vae import mlp_decoder, mlp_encoder
from ebm.plot import image_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.sampling import ais, reverse_ais
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument(
        "--replot",
        action="store_true",
        help="redraw the figure from <out>/generative_metrics_samples.npz and .json; no training",
    )


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
torch.set_num_threads(1)  # the same thread count for every model's training and sampling
Q = args.quick

# ---- budgets: (training steps or epochs) per model, far below each model's own recipe ----------
N_TOY = 500 if Q else 2000  # samples per model, held-out points and the data row
N_TRAIN, N_REF = 10000, 20000
BUDGET = {
    "toy": {
        "VAE": 100 if Q else 3000,
        "GAN": 100 if Q else 3000,
        "EBM": 60 if Q else 1500,
        "diffusion": 100 if Q else 3000,
        "CNF": 20 if Q else 500,
    },
    "digits": {
        "VAE": 3 if Q else 30,
        "GAN": 3 if Q else 60,
        "diffusion": 30 if Q else 3000,
        "CNF": 10 if Q else 300,
    },
}
UNITS = {"toy": "optimiser steps", "digits": "VAE/GAN epochs, diffusion/CNF steps"}
EBM_SAMPLE_STEPS = 100 if Q else 1000  # Langevin steps from noise (a jump per block of 20)
AIS_CHAINS, AIS_TEMPS = (64, 100) if Q else (256, 1000)
IWAE_K = {"toy": 16 if Q else 256, "digits": 8 if Q else 64}
WALL = 1e4  # the EBM's box as an energy wall for AIS: E + WALL·Σ relu(|x| − box)²

TOYS = {
    "ring-8": {"make": ring_of_gaussians, "noise": 0.1, "box": 3.0},
    "two-moons": {"make": two_moons, "noise": 0.05, "box": 2.5},
}
if Q:
    TOYS = {"ring-8": TOYS["ring-8"]}
MODELS = ("VAE", "GAN", "EBM", "diffusion", "CNF")


def draw(toy, n, seed):
    return toy["make"](n, noise=toy["noise"], generator=torch.Generator().manual_seed(seed))


def fit(model, data, steps=None, epochs=None, batch=256, ema=None):
    """Train with the one Trainer; the EMA weights (if any) become the model's."""
    torch.manual_seed(args.seed)
    trainer = Trainer(
        max_epochs=epochs,
        max_steps=steps,
        batch_size=batch,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
        ema_decay=ema,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    if ema is not None:
        trainer.ema.copy_to(model)
    model.eval()
    return trainer.device, time.perf_counter() - start


def timed(draw_samples):
    """(samples on the CPU, wall seconds to draw them)."""
    start = time.perf_counter()
    x = draw_samples()
    return x.detach().cpu(), time.perf_counter() - start


# ---- the figure and the table (also --replot's, from the saved samples and JSON) ---------------
COLUMNS = ("data", *MODELS, "noise")
BOXES = {"ring-8": 3.0, "two-moons": 2.5}


def plot(results, saved):
    """Samples of every row on each data set (shared axes per toy), then energy distances."""
    panels = [name for name in ("ring-8", "two-moons", "digits") if name in results]
    fig = plt.figure(figsize=(2.0 * len(COLUMNS), 2.3 * len(panels) + 2.8), layout="constrained")
    grid = fig.add_gridspec(len(panels) + 1, len(COLUMNS), height_ratios=[1] * len(panels) + [1.2])
    for row, name in enumerate(panels):
        rows, first = results[name]["rows"], None
        for col, model in enumerate(COLUMNS):
            ax = fig.add_subplot(grid[row, col], sharex=first, sharey=first)
            if model not in rows:
                ax.set_axis_off()
                ax.set_title(f"{model}: not run\non the digits", fontsize=8)
                continue
            x, r = torch.as_tensor(saved[f"{name}/{model}"]), rows[model]
            if name == "digits":
                image_grid(ax, x[:16], nrow=4, title=None)
                cover = f"{r['modes']}/10 classes"
            else:
                first = first or ax
                colour = "0.2" if model in ("data", "noise") else "C0"
                ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, linewidths=0, c=colour)
                box = BOXES[name]
                ax.set(xlim=(-box, box), ylim=(-box, box), aspect="equal", xlabel="x₁")
                cover = (
                    f"{r['modes']}/8 modes, {100 * r['high_quality']:.0f}% in 3σ"
                    if name == "ring-8"
                    else f"{100 * r['near_data']:.0f}% near data"
                )
                if col == 0:
                    ax.set_ylabel(f"{name}\nx₂")
            ax.set_title(f"{model}\nED {r['energy_distance']:.2g}, {cover}", fontsize=8)
    bars = fig.add_subfigure(grid[-1, :]).subplots(1, len(panels))
    for ax, name in zip(bars, panels):  # energy distances: ≥ 0, so a log scale shows them all
        rows = results[name]["rows"]
        names = [m for m in COLUMNS if m in rows]
        ax.bar(
            names,
            [rows[m]["energy_distance"] for m in names],
            color=["0.3" if m in ("data", "noise") else "C0" for m in names],
        )
        ax.set(yscale="log", title=f"{name}: energy distance", ylabel="energy distance D²")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.suptitle(
        "Generative models on the same data, scored against the same held-out points "
        "(ED: energy distance; data = floor, noise = ceiling)\nshort budgets: each model's own "
        "recipe trains longer"
    )
    save_figure(fig, args.out, "generative_metrics")


def loglik(r):
    if "exact" in r:
        return f"{r['exact']:.3f} (exact)"
    if "pf_ode" in r:
        return f"{r['pf_ode']:.3f} (probability-flow ODE)"
    if "iwae" in r:
        return f"≥ {r['iwae']:.3f} (IWAE; ELBO {r['elbo']:.3f})"
    if "ais" in r:
        return (
            f"{r['ais']:.3f} ± {r['ais_stderr']:.3f} (AIS; reverse AIS {r['reverse_ais']:.3f}, "
            f"grid {r['quadrature']:.3f})"
        )
    return "—"


def tables(results, n_samples):
    for name, numbers in results.items():
        print_table(
            f"{name}: {n_samples['digits' if name == 'digits' else 'toys']} samples vs held-out",
            {
                model: {
                    "MMD²": r["mmd"],
                    "energy dist.": r["energy_distance"],
                    "Fréchet": r["frechet"],
                    "coverage": f"{r['modes']}/{r['of']}"
                    if "modes" in r
                    else f"{100 * r['near_data']:.1f}%",
                    "log p (nats)": loglik(r),
                    "sampling s": r["seconds"] if "seconds" in r else "—",
                }
                for model, r in numbers["rows"].items()
            },
            header="model",
        )


if args.replot:  # the figure and the table of a finished run, without training
    numbers = json.loads((args.out / "generative_metrics.json").read_text())
    with np.load(args.out / "generative_metrics_samples.npz") as arrays:
        plot(numbers["datasets"], {key: arrays[key] for key in arrays.files})
    tables(numbers["datasets"], numbers["n_samples"])
    sys.exit(0)


# ---- the 2-D toys ------------------------------------------------------------------------------
def toy_models(toy, train, test, seed):
    """{model: {"samples", "seconds", "train_seconds", log-likelihood entries}} on one toy."""
    out = {}
    budget = BUDGET["toy"]
    mean, std = train.mean(0), train.std(0)  # VAE, GAN, diffusion and CNF see standardised data
    z_train, z_test = (train - mean) / std, (test - mean) / std
    log_det = float(std.log().sum())  # y = mean + std·u: log p(y) = log p(u) − Σ log std

    def unstd(u):
        return u.cpu() * std + mean

    # torch seeds its global RNG from the OS at start-up: seed it before building the first model,
    # whose initial weights would otherwise differ from run to run
    torch.manual_seed(seed)
    # VAE (a Gaussian decoder with a fixed σ = 0.1 in standardised units); its samples are the
    # decoded means PLUS that noise: the model's distribution, not its means
    vae = VAE(
        mlp_encoder((2,), 2, (128, 128)),
        mlp_decoder((2,), 2, (128, 128)),
        2,
        likelihood="gaussian",
        sigma=0.1,
        lr=1e-3,
    )
    dev, secs = fit(vae, z_train, steps=budget["VAE"], batch=256)
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        x, t = timed(
            lambda: vae.sample(N_TOY, g) + 0.1 * torch.randn(N_TOY, 2, generator=g, device=dev)
        )
        zt = z_test.to(dev)
        elbo = -vae.energy(zt, generator=g).mean().item() - log_det
        iwae = vae.log_likelihood(zt, n_samples=IWAE_K["toy"], generator=g).mean().item() - log_det
    out["VAE"] = {
        "samples": unstd(x),
        "seconds": t,
        "train_seconds": secs,
        "elbo": elbo,
        "iwae": iwae,
    }

    # GAN (gan_toy's best setting: non-saturating + R1 γ = 1, 3×128 MLPs, latent 8, annealed)
    gan = GAN(
        mlp([8, 128, 128, 128, 2], nn.ReLU),
        mlp([2, 128, 128, 128, 1], nn.LeakyReLU),
        latent_dim=8,
        loss="nonsaturating",
        lr=1e-3,
        r1_weight=1.0,
        lr_decay_steps=budget["GAN"],
    )
    dev, secs = fit(gan, z_train, steps=budget["GAN"], batch=256)
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        x, t = timed(lambda: gan.sample(N_TOY, generator=g))
    out["GAN"] = {"samples": unstd(x), "seconds": t, "train_seconds": secs}

    # EBM (ebm_2d's --method jumps: PCD with uniform jumps, averaged weights), on the raw box
    box = toy["box"]
    ebm = EBM(
        MLPEnergy(2, hidden=(128, 128), activation=nn.SiLU),
        data_shape=(2,),
        n_steps=20,
        step_size=0.001,
        noise_scale=math.sqrt(2 * 0.001),
        clamp=(-box, box),
        buffer_size=2048,
        reinit_prob=0.02,
        init_scale=box,
        alpha=0.01,
        lr=0.01,
        lr_decay_steps=budget["EBM"],
        lr_final_ratio=0.02,
        seed=seed,
        jumps=1,
    )
    dev, secs = fit(ebm, train, steps=budget["EBM"], batch=512, ema=0.95 if Q else 0.99)
    g = torch.Generator(device=dev).manual_seed(seed)
    x, t = timed(lambda: ebm.sample(N_TOY, n_steps=EBM_SAMPLE_STEPS, generator=g))
    out["EBM"] = {
        "samples": x,
        "seconds": t,
        "train_seconds": secs,
        **ebm_likelihood(ebm, box, test, seed),
    }

    # diffusion (diffusion_1d's model in 2-D: T = 1000 linear β from 1e-4 to 0.02, EMA weights)
    diff = Diffusion(2, hidden=(128, 128, 128), T=1000, schedule="linear", lr=2e-3)
    dev, secs = fit(diff, z_train, steps=budget["diffusion"], batch=512, ema=0.9 if Q else 0.995)
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        x, t = timed(lambda: diff.sample(N_TOY, method="ancestral", generator=g))
    # its probability-flow ODE's exact log-density (the same model sampled deterministically)
    start = time.perf_counter()
    pf_ode = diff.log_prob(z_test.to(dev), rtol=1e-5, atol=1e-5).mean().item() - log_det
    out["diffusion"] = {
        "samples": unstd(x),
        "seconds": t,
        "train_seconds": secs,
        "pf_ode": pf_ode,
        "pf_ode_seconds": time.perf_counter() - start,
    }

    # CNF (cnf_2d's: 3×64 tanh field, exact trace, RK4 training, dopri5 evaluation)
    cnf = CNF(2, hidden=(64, 64, 64), method="rk4", step_size=0.1, lr=3e-3)
    dev, secs = fit(cnf, z_train, steps=budget["CNF"], batch=256)
    cnf.method, cnf.step_size, cnf.rtol, cnf.atol = "dopri5", None, 1e-5, 1e-5
    g = torch.Generator(device=dev).manual_seed(seed)
    x, t = timed(lambda: cnf.sample(N_TOY, generator=g))
    with torch.no_grad():
        exact = cnf.log_prob(z_test.to(dev)).mean().item() - log_det
    out["CNF"] = {"samples": unstd(x), "seconds": t, "train_seconds": secs, "exact": exact}
    return out


class Walled(nn.Module):
    """E(x) + WALL·Σ relu(|x| − box)²: the box as a steep wall, the density the clamped sampler
    targets. x: (B, 2) -> (B,)."""

    def __init__(self, energy, box):
        super().__init__()
        self.energy, self.box = energy, box

    def forward(self, x):
        return self.energy(x).reshape(-1) + WALL * (x.abs() - self.box).clamp(min=0).pow(2).sum(1)


def ebm_likelihood(ebm, box, test, seed):
    """log p(test) with p = exp(−E)/Z on [−box, box]²: AIS (± stderr), reverse AIS, quadrature."""
    energy = ebm.energy
    device = next(energy.parameters()).device
    walled = Walled(energy, box)  # a module: AIS runs its chains on the energy's device

    cells = 400
    width = 2 * box / cells
    centres = -box + (torch.arange(cells, device=device) + 0.5) * width
    grid = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        e_grid = torch.cat([energy(part).reshape(-1) for part in grid.split(16384)]).double()
        e_test = energy(test.to(device)).reshape(-1).double()
    log_z_grid = torch.logsumexp(-e_grid, 0).item() + 2 * math.log(width)
    g = torch.Generator(device=device).manual_seed(seed + 5)
    # "exact" draws for reverse AIS: a grid cell by exp(−E), then uniform in it (as ebm_2d)
    cell = torch.multinomial(torch.softmax(-e_grid, 0), AIS_CHAINS, replacement=True, generator=g)
    exact = grid[cell] + (torch.rand(AIS_CHAINS, 2, generator=g, device=device) - 0.5) * width
    kw = {"n_temps": AIS_TEMPS, "base_std": box / 2, "generator": g}
    fwd = ais(walled, 2, n_chains=AIS_CHAINS, **kw)
    rev = reverse_ais(walled, exact, **kw)
    mean_e = e_test.mean().item()
    return {
        # AIS's log Z is a stochastic LOWER bound, so −E − log Ẑ is an upper bound on log p
        "ais": -mean_e - fwd.log_z.item(),
        "ais_stderr": fwd.stderr.item(),
        "ais_ess": fwd.ess.item(),
        "reverse_ais": -mean_e - rev.log_z.item(),
        "reverse_ais_stderr": rev.stderr.item(),
        "quadrature": -mean_e - log_z_grid,
    }


def toy_metrics(name, toy, x, test, reference, bandwidth):
    row = {
        "mmd": mmd(x, test, bandwidth=bandwidth).item(),
        "energy_distance": energy_distance(x, test).item(),
        "frechet": frechet_distance(x, test).item(),
    }
    if name == "ring-8":
        modes, quality = mode_coverage(x, ring_centers(8, 2.0), std=toy["noise"])
        row.update(modes=modes, of=8, high_quality=quality)
    else:
        row["near_data"] = near_data_fraction(x, reference, radius=3 * toy["noise"]).item()
    return row


results, saved = {}, {}
for name, toy in TOYS.items():
    train = draw(toy, N_TRAIN, args.seed)
    test = draw(toy, N_TOY, args.seed + 1)  # the held-out points every row is scored against
    data_row = draw(toy, N_TOY, args.seed + 2)
    reference = draw(toy, N_REF, args.seed + 3)
    bandwidth = torch.cdist(test, test).median().item()
    gen = torch.Generator().manual_seed(args.seed + 4)
    box = toy["box"]
    rows = {"data": {"samples": data_row}}
    rows.update(toy_models(toy, train, test, args.seed))
    rows["noise"] = {
        "samples": (torch.rand(N_TOY, 2, generator=gen) * 2 - 1) * box,
        "exact": -2 * math.log(2 * box),  # the uniform density on the box
    }
    table = {}
    for model, r in rows.items():
        table[model] = toy_metrics(name, toy, r["samples"], test, reference, bandwidth)
        table[model].update({k: v for k, v in r.items() if k != "samples"})
        saved[f"{name}/{model}"] = r["samples"]
    results[name] = {"bandwidth": bandwidth, "rows": table}
    saved[f"{name}/test"] = test
    print(f"{name} done", flush=True)

# ---- the digits --------------------------------------------------------------------------------
(train_x, _), (test_x, test_y) = digits("train"), digits("test")
N_DIG = len(test_x)  # 359: every row has as many samples as there are test images
budget = BUDGET["digits"]
flat_test = test_x.flatten(1)
bandwidth = torch.cdist(flat_test, flat_test).median().item()
classifier = digit_classifier("digits")
digit_rows = {"data": {"samples": train_x[:N_DIG]}}

vae = VAE(mlp_encoder((1, 8, 8), 8, (256,)), mlp_decoder((1, 8, 8), 8, (256,)), 8, lr=1e-3)
dev, secs = fit(vae, train_x, epochs=budget["VAE"], batch=64)
g = torch.Generator(device=dev).manual_seed(args.seed)
with torch.no_grad():
    x, t = timed(lambda: vae.sample(N_DIG, generator=g))
    elbo = -vae.energy(test_x.to(dev), generator=g).mean().item()
    iwae = vae.log_likelihood(test_x.to(dev), n_samples=IWAE_K["digits"], generator=g).mean().item()
digit_rows["VAE"] = {"samples": x, "seconds": t, "train_seconds": secs, "elbo": elbo, "iwae": iwae}

generator = nn.Sequential(
    mlp([32, 256, 256, 64], nn.LeakyReLU), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8))
)
discriminator = nn.Sequential(nn.Flatten(), mlp([64, 256, 256, 1], nn.LeakyReLU))
gan_steps = budget["GAN"] * -(-len(train_x) // 64)
gan = GAN(
    generator,
    discriminator,
    32,
    loss="nonsaturating",
    lr=1e-3,
    r1_weight=1.0,
    lr_decay_steps=gan_steps,
)
dev, secs = fit(gan, train_x, epochs=budget["GAN"], batch=64)
g = torch.Generator(device=dev).manual_seed(args.seed)
with torch.no_grad():
    x, t = timed(lambda: gan.sample(N_DIG, generator=g))
digit_rows["GAN"] = {"samples": x, "seconds": t, "train_seconds": secs}

# the CNF and the diffusion model see dequantised pixels y = (16·x + u)/17, u ~ U[0, 1): the 17
# grey levels k/16 spread over [k/17, (k + 1)/17), so the data have a density on [0, 1)⁶⁴ (on the
# raw levels a flow's likelihood grows without bound). Samples map back to grey levels by
# x = (17·y − ½)/16.
deq = torch.Generator().manual_seed(args.seed + 6)


def dequantise(images):
    flat = images.flatten(1)
    return (16 * flat + torch.rand(flat.shape, generator=deq)) / 17


dq_train, dq_test = dequantise(train_x), dequantise(test_x)

# diffusion on the dequantised pixels mapped to [−1, 1] (u = 2y − 1); samples mapped back to
# grey levels and clipped to [0, 1]. Its log-likelihood: the probability-flow ODE's exact density
# of u (Hutchinson's trace, one probe per image: 64-D), moved to y's cube [0, 1)⁶⁴ by the
# Jacobian of u = 2y − 1: log p(y) = log p(u) + 64 log 2, comparable with the CNF's and the noise
# row's 0.
diff = Diffusion(64, hidden=(256, 256, 256), T=1000, schedule="linear", lr=1e-3)
dev, secs = fit(
    diff, dq_train * 2 - 1, steps=budget["diffusion"], batch=128, ema=0.9 if Q else 0.995
)
g = torch.Generator(device=dev).manual_seed(args.seed)
x, t = timed(lambda: diff.sample(N_DIG, generator=g))
x = ((17 * (x + 1) / 2 - 0.5) / 16).clamp(0, 1).reshape(-1, 1, 8, 8)
start = time.perf_counter()
pf_ode = diff.log_prob(
    (dq_test * 2 - 1).to(dev), divergence="hutchinson", rtol=1e-5, atol=1e-5, generator=g
)
digit_rows["diffusion"] = {
    "samples": x,
    "seconds": t,
    "train_seconds": secs,
    "pf_ode": pf_ode.mean().item() + 64 * math.log(2),  # nats per dequantised test image
    "pf_ode_divergence": "hutchinson",
    "pf_ode_seconds": time.perf_counter() - start,
}

# CNF on the dequantised pixels, standardised; trained with Hutchinson's trace (64-D, RK4), scored
# with the exact trace (dopri5).
dq_mean, dq_std = dq_train.mean(0), dq_train.std(0) + 0.01  # some corner pixels never change
cnf = CNF(64, hidden=(256, 256), method="rk4", step_size=0.25, lr=1e-3)
dev, secs = fit(cnf, (dq_train - dq_mean) / dq_std, steps=budget["CNF"], batch=128)
cnf.method, cnf.step_size, cnf.rtol, cnf.atol = "dopri5", None, 1e-5, 1e-5
g = torch.Generator(device=dev).manual_seed(args.seed)
x, t = timed(lambda: cnf.sample(N_DIG, generator=g))
x = ((17 * (x * dq_std + dq_mean) - 0.5) / 16).clamp(0, 1).reshape(-1, 1, 8, 8)
cnf.divergence = "exact"
with torch.no_grad():
    exact = cnf.log_prob(((dq_test - dq_mean) / dq_std).to(dev)).mean().item()
digit_rows["CNF"] = {
    "samples": x,
    "seconds": t,
    "train_seconds": secs,
    "exact": exact - dq_std.log().sum().item(),  # nats per dequantised test image
}
digit_rows["noise"] = {
    "samples": torch.rand(N_DIG, 1, 8, 8, generator=torch.Generator().manual_seed(args.seed + 4)),
    "exact": 0.0,  # the uniform density on [0, 1]⁶⁴ (the CNF's dequantised pixels' cube)
}

table = {}
for model, r in digit_rows.items():
    x = r["samples"].float()
    with torch.no_grad():
        labels = classifier(x).argmax(1)
    shares = torch.bincount(labels, minlength=10).float() / len(x)
    table[model] = {
        "mmd": mmd(x.flatten(1), flat_test, bandwidth=bandwidth).item(),
        "energy_distance": energy_distance(x.flatten(1), flat_test).item(),
        "frechet": frechet_classifier_distance(x, test_x).item(),
        "modes": int((shares >= 0.05).sum()),
        "of": 10,
        "smallest_class_share": shares.min().item(),
        **{k: v for k, v in r.items() if k != "samples"},
    }
    saved[f"digits/{model}"] = x
results["digits"] = {"bandwidth": bandwidth, "rows": table}

# ---- numbers, samples, the figure --------------------------------------------------------------
save_samples(args.out, "generative_metrics", saved)
write_results(
    args.out,
    "generative_metrics",
    {
        "seed": args.seed,
        "quick": Q,
        "n_samples": {"toys": N_TOY, "digits": N_DIG},
        "threads": 1,
        "timing_note": "wall seconds on a shared CPU under load (2 cores, several jobs): "
        "compare rows, not absolute numbers",
        "budgets": {"toy": BUDGET["toy"], "digits": BUDGET["digits"], "units": UNITS},
        "ebm_sampling_langevin_steps": EBM_SAMPLE_STEPS,
        "ais": {"chains": AIS_CHAINS, "temperatures": AIS_TEMPS},
        "iwae_samples": IWAE_K,
        # the models' own recipes, longer runs, where they measure the same number on the same data
        "own_recipes": {
            "cnf_2d": {"steps": 1500, "two-moons exact log-likelihood": "figures/cnf_2d.json"},
            "ebm_2d": {
                "steps": 6000,
                "ring-8 within 3σ, two-moons near data": "figures/ebm_2d.json",
            },
            "vae_digits": {"epochs": 60, "IWAE, Fréchet": "figures/vae_digits.json"},
            "gan_digits": {"epochs": 300, "Fréchet": "figures/gan_digits.json"},
            "jem_digits": {"the EBM on the digits": "figures/jem_digits.json"},
        },
        "datasets": results,
    },
)
plot(results, saved)
tables(results, {"toys": N_TOY, "digits": N_DIG})
