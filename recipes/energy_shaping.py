"""The notes' ways of shaping an energy (ch. 19–20), side by side: the same energy net on the same
2-D toy, trained by contrastive divergence, score matching and noise-contrastive estimation; and
ratio matching and minimum probability flow on a small binary toy whose partition function is
enumerated exactly, against maximum likelihood.

2-D part: a ring of 8 Gaussians (radius 2, std 0.15), 20 000 training points, 4000 held out.
Every method trains one ``MLPEnergy`` 2→64→64→1 (SiLU; the same initial weights) for the same
number of Adam steps (β = (0, 0.999), learning rate 0.003, batch 256):
- CD, short-run (Nijkamp et al. 2019): negatives are 20 Langevin steps (s = 0.005, noise √(2s))
  from fresh uniform noise on the box [−3, 3]², α = 0.01 (``ebm.models.EBM(chains="noise")``);
- PCD (Tieleman 2008): the same chains from a replay buffer of 2048 (5 % re-drawn);
- score matching (fig. 20.5: flat at the data, curved around it): exact (Hyvärinen 2005), sliced
  (Song et al. 2019, one projection, variance-reduced) and denoising (Vincent 2011, σ = 0.05),
  from ``ebm.score_matching``;
- NCE (Gutmann & Hyvärinen 2010, ``ebm.losses.nce_loss``): noise q = the Gaussian fitted to the
  training data, one noise point per data point; the last layer's bias is the learnable
  log-normaliser.
Each energy is read on the box [−3, 3]² (the ring and its 3σ tails lie inside): log Z by the
midpoint rule on a 300 × 300 grid (``ebm.sampling.grid_log_partition``), so the exact
log-likelihood is that of exp(−E) normalised on the box (mass outside is ignored; the JSON gives
the share exp(−E) puts on the rest of [−6, 6]², cells of the same size, which says whether that is
negligible). Samples: exact draws from exp(−E) on the grid (``ebm.sampling.grid_sample``; no
chain: the energy itself) and 1000 Langevin steps (s = 0.001) from uniform noise on the box
(what a user would run). Metrics (``ebm.metrics``): the modes' shares (1/8 each for the data),
the fraction within 3σ of a mode, and the MMD to held-out data.

Binary part: d = 10 bits from 3 prototypes (weights 0.5, 0.3, 0.2), each bit flipped with
probability 0.1; 1000 training and 5000 test vectors. A fully visible Boltzmann machine
E(x) = −½xᵀWx − bᵀx (W symmetric, zero diagonal) is fitted by exact maximum likelihood (log Z
enumerated over the 1024 states), by ratio matching (Hyvärinen 2007, ``ebm.losses
.ratio_matching_loss``) and by minimum probability flow (Sohl-Dickstein et al. 2011,
``ebm.losses.mpf_loss``), 1500 full-batch Adam steps each; the exact test log-likelihood of each
is reported beside that of the true distribution.

    python recipes/energy_shaping.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

from __future__ import annotations

import itertools
import math
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebm.data import ring_of_gaussians
from ebm.data.toy2d import ring_centers
from ebm.energies import MLPEnergy
from ebm.losses import mpf_loss, nce_loss, ratio_matching_loss
from ebm.metrics import mmd, mode_weights
from ebm.models import EBM
from ebm.plot import add_colorbar, energy_image, evaluate_on_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.sampling import grid_log_partition, grid_sample, langevin
from ebm.score_matching import (
    denoising_score_matching_loss,
    exact_score_matching_loss,
    sliced_score_matching_loss,
)
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()

# ---- settings ------------------------------------------------------------------------------
N_MODES, RADIUS, STD = 8, 2.0, 0.15
BOX, BIG_BOX, CELLS = 3.0, 6.0, 300  # log Z on [−BOX, BOX]² (CELLS²); leak from [−BIG_BOX, …]²
N_TRAIN, N_TEST, N_SAMPLES = 20000, 4000, 4000
STEPS, BATCH, LR = 3000, 256, 3e-3
K, CD_STEP, ALPHA = 20, 0.005, 0.01  # CD chains: K Langevin steps of size CD_STEP
SAMPLE_STEPS, SAMPLE_STEP = 1000, 0.001  # evaluation Langevin chains from uniform noise
DSM_SIGMA = 0.05
BITS, PROTO_WEIGHTS, FLIP = 10, (0.5, 0.3, 0.2), 0.1
N_BIN_TRAIN, N_BIN_TEST, BIN_STEPS, BIN_LR = 1000, 5000, 1500, 0.05
if args.quick:
    N_TRAIN, N_TEST, N_SAMPLES, STEPS, CELLS = 2000, 500, 500, 40, 60
    SAMPLE_STEPS, BIN_STEPS, N_BIN_TEST = 50, 30, 1000


# [−BIG_BOX, BIG_BOX]² outside [−BOX, BOX]²: (low, high, cells) of four strips, cells as the box's
_EDGE, _SIDE = round(CELLS * (BIG_BOX - BOX) / (2 * BOX)), round(CELLS * BIG_BOX / BOX)
STRIPS = [
    ((-BIG_BOX, -BIG_BOX), (-BOX, BIG_BOX), (_EDGE, _SIDE)),  # left
    ((BOX, -BIG_BOX), (BIG_BOX, BIG_BOX), (_EDGE, _SIDE)),  # right
    ((-BOX, -BIG_BOX), (BOX, -BOX), (CELLS, _EDGE)),  # bottom
    ((-BOX, BOX), (BOX, BIG_BOX), (CELLS, _EDGE)),  # top
]


def gen(offset: int) -> torch.Generator:
    return torch.Generator().manual_seed(args.seed + offset)


x_train = ring_of_gaussians(N_TRAIN, N_MODES, RADIUS, STD, generator=gen(0))
x_test = ring_of_gaussians(N_TEST, N_MODES, RADIUS, STD, generator=gen(1))
centers = ring_centers(N_MODES, RADIUS)


class RingEnergy(nn.Module):
    """−log p of the ring itself (an equal mixture of isotropic Gaussians), (B, 2) -> (B,), in
    float64: its float64 buffer makes the grid functions read it on float64 points."""

    def __init__(self):
        super().__init__()
        self.register_buffer("centers", centers.double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(x.double(), self.centers).square()  # (B, K)
        log_p = torch.logsumexp(-sq / (2 * STD**2), 1) - math.log(N_MODES * 2 * math.pi * STD**2)
        return -log_p


true_energy = RingEnergy()


# ---- the 2-D methods -------------------------------------------------------------------------
mean, cov = x_train.mean(0), torch.cov(x_train.T)
_noise = {}  # NCE's noise q, the Gaussian fitted to the data, on each device the data visit


def noise_q(x: torch.Tensor) -> torch.distributions.MultivariateNormal:
    if x.device not in _noise:
        _noise[x.device] = torch.distributions.MultivariateNormal(
            mean.to(x.device), cov.to(x.device)
        )
    return _noise[x.device]


class Shaper(nn.Module):
    """An energy trained by one loss(energy, x) -> scalar; Adam as the CD models use."""

    def __init__(self, energy: nn.Module, loss):
        super().__init__()
        self.energy, self.loss = energy, loss

    def training_step(self, batch):
        return self.loss(self.energy, batch if isinstance(batch, torch.Tensor) else batch[0])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR, betas=(0.0, 0.999))


def nce(energy, x):
    q = noise_q(x)
    y = q.sample((len(x),))  # one noise point per data point (ν = 1), torch's global RNG
    return nce_loss(energy(x), energy(y), q.log_prob(x), q.log_prob(y))


def cd(energy, chains):
    return EBM(
        energy,
        data_shape=(2,),
        chains=chains,
        n_steps=K,
        step_size=CD_STEP,
        clamp=(-BOX, BOX),
        buffer_size=2048,
        reinit_prob=0.05,
        init_scale=BOX,
        alpha=ALPHA,
        lr=LR,
        seed=args.seed,
    )


METHODS = {
    "CD short-run": lambda e: cd(e, "noise"),
    "PCD": lambda e: cd(e, "persistent"),
    "exact SM": lambda e: Shaper(e, exact_score_matching_loss),
    "sliced SM": lambda e: Shaper(e, sliced_score_matching_loss),
    "denoising SM": lambda e: Shaper(
        e, lambda f, x: denoising_score_matching_loss(f, x, DSM_SIGMA)
    ),
    "NCE": lambda e: Shaper(e, nce),
}


@torch.no_grad()
def evaluate(energy) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact log-likelihood on the box, exact grid samples and Langevin samples, and the metrics."""
    log_z = grid_log_partition(energy, -BOX, BOX, dim=2, cells=CELLS)
    # the mass on the rest of [−BIG_BOX, BIG_BOX]², four strips with cells of the same size,
    # summed directly (a difference of the two boxes' sums would be float32 rounding noise)
    log_z_out = torch.stack(
        [grid_log_partition(energy, lo, hi, cells=c) for lo, hi, c in STRIPS]
    ).logsumexp(0)
    g = gen(10)
    exact = grid_sample(energy, N_SAMPLES, -BOX, BOX, dim=2, cells=CELLS, generator=g)
    start = (torch.rand(N_SAMPLES, 2, generator=g) * 2 - 1) * BOX
    chains = langevin(energy, start, SAMPLE_STEPS, SAMPLE_STEP, clamp=(-BOX, BOX), generator=g)
    result = {
        "test_log_likelihood": (-energy(x_test).double() - log_z).mean().item(),
        "mass_outside_box": torch.sigmoid(log_z_out - log_z).item(),  # Z_out / (Z_box + Z_out)
    }
    for name, x in (("exact_samples", exact), ("langevin_samples", chains)):
        shares, within = mode_weights(x, centers, std=STD, n_std=3.0)
        result[name] = {
            "within_3sd": within.item(),
            "mode_shares": shares.tolist(),
            "max_share_error": (shares - 1 / N_MODES).abs().max().item(),
            "mmd_to_test": mmd(x, x_test).item(),
        }
    return result, density_map(energy, log_z), exact, chains


def density_map(energy, log_z: torch.Tensor) -> torch.Tensor:
    """E + log Z = −log p on a CELLS × CELLS image of the box (rows = x₂), for the figure."""
    E, _, _ = evaluate_on_grid(energy, (-BOX, BOX), (-BOX, BOX), n=CELLS)
    return E.double() + log_z


results, maps, samples = {}, {}, {}
torch.manual_seed(args.seed)
init = MLPEnergy(2, hidden=(64, 64), activation=nn.SiLU).state_dict()
for name, make in METHODS.items():
    energy = MLPEnergy(2, hidden=(64, 64), activation=nn.SiLU)
    energy.load_state_dict(init)  # the same initial weights for every method
    model = make(energy)
    trainer = Trainer(
        max_epochs=None,
        max_steps=STEPS,
        batch_size=BATCH,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    start = time.perf_counter()
    trainer.fit(model, x_train)
    seconds = time.perf_counter() - start
    energy = model.energy.cpu().eval()
    result, maps[name], samples[f"{name}/exact"], samples[f"{name}/langevin"] = evaluate(energy)
    results[name] = {"train_seconds": seconds, **result}

# the reference: the ring's own density, on the same box and with the same metrics
truth_log_z = grid_log_partition(true_energy, -BOX, BOX, dim=2, cells=CELLS).item()  # ≈ 0
maps["true density"] = density_map(true_energy, torch.tensor(truth_log_z))
truth_shares, truth_within = mode_weights(x_test, centers, std=STD, n_std=3.0)
truth = {
    "test_log_likelihood": (-true_energy(x_test)).mean().item(),
    "log_mass_on_box": truth_log_z,
    "held_out_data": {
        "within_3sd": truth_within.item(),
        "max_share_error": (truth_shares - 1 / N_MODES).abs().max().item(),
        "mmd_to_test": mmd(
            ring_of_gaussians(N_SAMPLES, N_MODES, RADIUS, STD, generator=gen(2)), x_test
        ).item(),
    },
}

# ---- the binary part -------------------------------------------------------------------------
protos = torch.rand(len(PROTO_WEIGHTS), BITS, generator=gen(20)) < 0.5
STATES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=BITS)))  # (2^d, d)


def binary_draw(n: int, g: torch.Generator) -> torch.Tensor:
    which = torch.multinomial(torch.tensor(PROTO_WEIGHTS), n, replacement=True, generator=g)
    flips = torch.rand(n, BITS, generator=g) < FLIP
    return (protos[which] ^ flips).float()


def true_log_p(x: torch.Tensor) -> torch.Tensor:
    """log p(x) of the prototype mixture, (B,)."""
    differ = (x.unsqueeze(1) != protos.float().unsqueeze(0)).sum(2).double()  # (B, K)
    log_k = differ * math.log(FLIP) + (BITS - differ) * math.log(1 - FLIP)
    return torch.logsumexp(log_k + torch.tensor(PROTO_WEIGHTS, dtype=torch.float64).log(), 1)


class Boltzmann(nn.Module):
    """A fully visible Boltzmann machine: E(x) = −½xᵀWx − bᵀx, W symmetric with zero diagonal."""

    def __init__(self, d: int):
        super().__init__()
        self.upper = nn.Parameter(torch.zeros(d, d))
        self.b = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        W = self.upper.triu(1)
        return -((x @ W) * x).sum(1) - x @ self.b  # ½xᵀ(W + Wᵀ)x = xᵀ W_upper x

    def log_z(self):
        return torch.logsumexp(-self(STATES), 0)


def max_likelihood(energy, x):
    return energy(x).mean() + energy.log_z()


b_train, b_test = binary_draw(N_BIN_TRAIN, gen(21)), binary_draw(N_BIN_TEST, gen(22))
BINARY = {"max likelihood": max_likelihood, "ratio matching": ratio_matching_loss, "MPF": mpf_loss}
binary, probs = {}, {"true": true_log_p(STATES).exp()}
for name, loss in BINARY.items():
    machine = Boltzmann(BITS)
    opt = torch.optim.Adam(machine.parameters(), lr=BIN_LR)
    start = time.perf_counter()
    for _ in range(BIN_STEPS):
        opt.zero_grad()
        loss(machine, b_train).backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        log_p = -machine(STATES) - machine.log_z()
        probs[name] = log_p.exp().double()
        binary[name] = {
            "train_seconds": seconds,
            "test_log_likelihood": (-machine(b_test) - machine.log_z()).mean().item(),
            "train_log_likelihood": (-machine(b_train) - machine.log_z()).mean().item(),
            "kl_true_to_model": (probs["true"] * (probs["true"].log() - log_p.double()))
            .sum()
            .item(),
        }
binary["true distribution"] = {
    "test_log_likelihood": true_log_p(b_test).mean().item(),
    "train_log_likelihood": true_log_p(b_train).mean().item(),
}

# ---- figure --------------------------------------------------------------------------------
fig, axes = plt.subplots(3, 4, figsize=(15, 11.5), layout="constrained")
panels = ["true density", *METHODS]
VMIN = min(m.min().item() for m in maps.values())
VMAX = VMIN + 12.0  # 12 nats of −log p above the deepest point
lim = (-BOX, BOX)
for ax, name in zip(axes.flat, panels):
    image = energy_image(ax, maps[name], lim, lim, vmin=VMIN, vmax=VMAX, colorbar=False)
    if name == "true density":
        ax.scatter(*x_test[:1000].T, s=1, color="w", alpha=0.5, linewidths=0)
        ax.set_title(
            f"the ring: −log p, test LL {truth['test_log_likelihood']:.2f}\n"
            "(white: held-out data; modes 12.5% each)"
        )
    else:
        r = results[name]
        ax.scatter(*samples[f"{name}/exact"][:1000].T, s=1, color="w", alpha=0.5, linewidths=0)
        q = r["exact_samples"]
        ax.set_title(
            f"{name}: test LL {r['test_log_likelihood']:.2f}\n"
            f"{100 * q['within_3sd']:.0f}% within 3σ, modes "
            f"{100 * min(q['mode_shares']):.1f}–{100 * max(q['mode_shares']):.1f}%"
        )
    ax.set(xlabel="x₁", ylabel="x₂", aspect="equal")
add_colorbar(axes[1, 2], image, "E + log Z = −log p on the box (nats)", extend="max")

ax = axes[1, 3]
names = panels
ll = [truth["test_log_likelihood"]] + [results[n]["test_log_likelihood"] for n in METHODS]
ax.barh(range(len(names)), ll, color=["C7"] + ["C0"] * len(METHODS))
ax.set_yticks(range(len(names)), names)
ax.invert_yaxis()
ax.set(xlabel="mean test log-likelihood (nats, exact on the box)", title="2-D: test log-likelihood")
for k, v in enumerate(ll):
    ax.text(v, k, f" {v:.2f}", va="center", ha="left", color="w", fontsize=9)

for ax, name in zip(axes[2, :3], BINARY):
    ax.scatter(probs["true"], probs[name], s=6, color="C0", alpha=0.6, linewidths=0)
    ax.plot([1e-8, 1], [1e-8, 1], color="k", lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(1e-7, 0.3),
        ylim=(1e-7, 0.3),
        xlabel="true p(x)",
        ylabel="model p(x)",
        title=f"binary, {name}: test LL {binary[name]['test_log_likelihood']:.3f}",
    )
ax = axes[2, 3]
gaps = [
    binary[n]["test_log_likelihood"] - binary["true distribution"]["test_log_likelihood"]
    for n in BINARY
]
ax.barh(range(len(BINARY)), gaps, color="C1")
ax.set_yticks(range(len(BINARY)), list(BINARY))
ax.invert_yaxis()
ax.set(
    xlabel="test LL − test LL of the true distribution (nats)",
    title=f"binary d = {BITS}: exact test LL, true: "
    f"{binary['true distribution']['test_log_likelihood']:.3f}",
)
for k, v in enumerate(gaps):
    ax.text(v, k, f" {v:.3f}", va="center", ha="left", color="w", fontsize=9)
fig.suptitle(
    "Shaping one energy (MLP 2→64→64→1) by six methods: −log p on [−3, 3]² (dark = low), "
    f"white: exact draws from exp(−E); {STEPS} Adam steps each\n"
    f"bottom: a {BITS}-bit Boltzmann machine by maximum likelihood, ratio matching and MPF "
    "(each dot one of the 1024 states)"
)
save_figure(fig, args.out, "energy_shaping")
save_samples(
    args.out,
    "energy_shaping",
    {k.replace(" ", "_").replace("/", "__"): v for k, v in samples.items()}
    | {
        "test_data": x_test,
        "binary_states": STATES,
        **{f"binary_p_{k.replace(' ', '_')}": v for k, v in probs.items()},
    },
)
write_results(
    args.out,
    "energy_shaping",
    {
        "methods_2d": results,
        "true_density_2d": truth,
        "binary": binary,
        "settings": {
            "steps": STEPS,
            "batch": BATCH,
            "lr": LR,
            "box": BOX,
            "grid_cells": CELLS,
            "cd_langevin_steps": K,
            "cd_step_size": CD_STEP,
            "dsm_sigma": DSM_SIGMA,
            "sample_langevin_steps": SAMPLE_STEPS,
            "binary_bits": BITS,
            "binary_steps": BIN_STEPS,
        },
        "quick": args.quick,
    },
)
print_table(
    f"2-D ring, {STEPS} steps each: exact test log-likelihood on the box, and exact-sample metrics",
    {
        name: {
            "seconds": r["train_seconds"],
            "test LL": r["test_log_likelihood"],
            "outside box": r["mass_outside_box"],
            "in 3σ": r["exact_samples"]["within_3sd"],
            "share err": r["exact_samples"]["max_share_error"],
            "MMD": r["exact_samples"]["mmd_to_test"],
            "Langevin in 3σ": r["langevin_samples"]["within_3sd"],
            "Langevin share err": r["langevin_samples"]["max_share_error"],
        }
        for name, r in results.items()
    },
    header="method",
)
print_table(
    f"binary d = {BITS}, Boltzmann machine, {BIN_STEPS} steps: exact log-likelihoods",
    binary,
    header="method",
)
