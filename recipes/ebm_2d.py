"""An MLP energy learns four 2-D toys by persistent contrastive divergence; samples are Langevin
chains from fresh noise, with a uniform jump before every block of steps (``--method jumps``).

Method (the same for every toy; the settings table TOYS lists what differs):
- energy: ``MLPEnergy`` 2→128→128→1 with SiLU (smooth, so the Langevin drift is continuous);
- phase 1, persistent contrastive divergence (Tieleman 2008; Du & Mordatch 2019): negatives are
  10–20 steps of unadjusted Langevin, x ← x − s·∇E(x) + √(2s)·ε with s = 0.001, so the chains
  sample p ∝ exp(−E) approximately (an O(s) bias, and the clamp at the box), not a colder
  density; they start from a replay buffer of 2048 persistent chains (1–2 % re-drawn from
  uniform noise on the plotted box each time) and are clamped to the box; loss: contrastive
  divergence + α·(E_data² + E_model²) (the energy-magnitude penalty); Adam (β₁ = 0), batch 512,
  learning rate 0.01 cosine-decayed to 0.0002 over the run.
Langevin chains hardly ever cross the walls between separated modes (the ring's Gaussians, the
checkerboard's squares), so phase 1 alone sees a mode's mass only through the few chains re-drawn
from noise, and leaves the modes' relative depths loosely set: a fraction of a nat decides a
10 % against a 15 % share. Two remedies, ``--method``:
- ``jumps`` (the default, ebm_2d.png): every chain also makes one uniform jump
  (``ebm.sampling.uniform_jump``, a Metropolis independence step with proposals uniform on the
  box, exact for exp(−E) on the box) before each block of Langevin steps (``EBM(jumps=1)``), so
  mass moves between modes as exp(−E) says and the depths are trained; the model is the weights'
  moving average (``Trainer(ema_decay=0.998)``), because the last weights' depths jitter by a
  fraction of a nat (the JSON keeps the last weights' exp(−E) as ``energy_itself_last_weights``).
  Samples use the same kernel (``EBM.sample``: a jump per block);
- ``finetune`` (ebm_2d_finetune.png): no jumps; phase 2, short-run fine-tuning (Nijkamp et al.
  2019): 200 more steps whose negatives are the figure's own sampler (1000 pure Langevin steps
  from fresh noise), batch 128, learning rate 0.0002 cosine-decayed. This balances what that one
  sampler produces: fresh chains fall into each mode by the size of its basin, and the depths are
  bent to make up for it, so exp(−E) itself gives the modes very unequal masses;
- samples: 1000 Langevin steps (with the method's jumps) from FRESH uniform noise on the box (not
  the buffer). The JSON also records pure Langevin from noise for ``jumps`` (``langevin_only``)
  and, for both, exp(−E) itself (``energy_itself``: exact draws from E on a 400 × 400 grid; no
  chain), which says whether the energy, not the sampler, has the right masses.

Targets, on those samples (``ebm.metrics.toy_quality``):
- checkerboard: ≥ 95 % inside the 8 dark squares, each holding 12.5 ± 2.5 % of the samples;
- ring-8 (std 0.1): each mode holds 12.5 ± 2.5 %, and ≥ 95 % lie within 3σ of a mode;
- two moons (noise 0.05), pinwheel (thin-direction noise 0.2): ≥ 95 % have a point of a fresh data
  draw (20 000 points) within 3× the noise.
The MMD (RBF kernel, median bandwidth) is reported beside them: its kernel is as wide as the toy,
so it misses exactly the failures these targets catch (the previous recipe's checkerboard had an
MMD of 0.0007 with samples filling the empty squares). Every metric is also computed on a fresh
data draw, the best a sampler can do at this sample size; the near-data target is loose for the
pinwheel, whose arms cover much of its box. The JSON records the metrics after 200, 1000 and
3000 Langevin steps: with ``finetune``, chains longer or shorter than the 1000 it was tuned for
miss the shares.

What failed on the way (checkerboard, seed 0 or 1, 1000 fresh-noise steps unless stated):
- the previous recipe (ReLU, noise 0.01 = a chain at temperature 0.005, 200 sampling steps,
  2000 training steps): fills the empty squares, piles samples on the square edges;
- proper Langevin with s = 0.005, lr 0.001, α = 0.1, 4000 steps: 78 % inside. α = 0.1 caps the
  walls near 1/(2α) = 5 nats above the data; α = 0.01: 84 %;
- short-run chains from noise only (no buffer, K = 40): 87 % inside after the 40 steps it was
  trained for, and longer chains collapse into two squares (36 % and 26 % at 1000 steps): the
  K-step sampler, not exp(−E), is what such training fits;
- a 10 000-chain buffer, visited every ~20 steps: buffer chains hardly move between squares, so
  the valleys' depths drift apart unseen: fresh chains of 3000 steps put 47 % into one square;
- colder chains (noise √(2s·T), T = 0.05): 91 %, the same as proper Langevin with the same
  noise per step (90 %), as they must be: chains at temperature T sample exp(−E/T), so this
  only rescales the energy;
- a wider 2→256→256→1 net at lr 0.005: 94 % after 6000 steps at 2.2× the cost; lr 0.005 on the
  128-wide net for 10 000 steps: 94 %;
- phase 1 alone (the settings here): 95–96 % inside, but the squares' shares spread to 9–16 %
  at 1000 steps and 4–26 % at 3000 on some seeds: the depths were off by up to a nat;
- α = 0.001 on two moons: the energy runs away below the data and the chains leave it (0.4 %
  near the data); α = 0.01 works there and on the ring and pinwheel.
What worked for the walls is a large early learning rate (they need large first-layer weights,
which Adam grows by ~lr per step) decayed to a small one, and a small buffer, so each chain runs
~1000 Langevin steps between re-draws; the depths are the two methods' business above.
"""

from __future__ import annotations

import json
import math
import time
from collections import namedtuple

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Circle, Rectangle
from torch import nn

from ebm.data import checkerboard, pinwheel, ring_of_gaussians, two_moons
from ebm.data.toy2d import ring_centers
from ebm.energies import MLPEnergy
from ebm.metrics import checkerboard_occupancy, mmd, mode_weights, near_data_fraction
from ebm.models import EBM
from ebm.plot import energy_image, evaluate_on_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.sampling import grid_sample
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument(
        "--name", default="ebm_2d", help="prefix of every output file (e.g. ebm_2d_seed1)"
    )
    parser.add_argument(
        "--method",
        choices=("jumps", "finetune"),
        default="jumps",
        help="jumps (the default): PCD whose chains also make uniform jumps, sampled likewise, "
        "weights averaged; finetune: PCD, then short-run fine-tuning of pure-Langevin chains "
        "from fresh noise",
    )


args = parse_args(__doc__, add_arguments=add_arguments)
JUMPS = args.method == "jumps"
use_style()
Toy = namedtuple("Toy", "make box noise steps alpha n_steps reinit")


def _draws(generate, **kwargs):
    """make(n, seed): ``generate(n, **kwargs)`` from a generator seeded with ``seed``."""
    return lambda n, seed: generate(n, **kwargs, generator=torch.Generator().manual_seed(seed))


# make(n, seed) draws the data; box: half-width of the square the chains start in and are clamped
# to; noise: the data's noise (the targets' length scale); steps: training steps; alpha: the
# energy-magnitude penalty; n_steps: Langevin steps per training step; reinit: the buffer's
# re-draw probability (the buffer's chains are n_steps/reinit Langevin steps old on average)
TOYS = {
    "ring-8": Toy(_draws(ring_of_gaussians, noise=0.1), 3.0, 0.1, 6000, 0.01, 20, 0.02),
    "two-moons": Toy(_draws(two_moons, noise=0.05), 2.5, 0.05, 6000, 0.01, 20, 0.02),
    "pinwheel": Toy(_draws(pinwheel), 4.0, 0.2, 6000, 0.01, 20, 0.02),
    "checkerboard": Toy(_draws(checkerboard), 4.5, None, 10000, 0.001, 10, 0.01),
}
STEP_SIZE = 0.001  # Langevin step s; the noise is √(2s): proper Langevin on exp(−E)
N_TRAIN, N_EVAL, N_REF, N_EXACT = 20000, 4000, 20000, 20000
SAMPLE_STEPS = (200, 1000, 3000)  # fresh-noise chains, recorded after each; SHOWN is the headline
SHOWN = 1000
ENERGY_RANGE = 8.0  # nats above the data's median energy shown in colour
TUNE_STEPS, TUNE_BATCH, TUNE_LR = 200, 128, 2e-4  # --method finetune, phase 2
EMA_DECAY = 0.998  # --method jumps: the model is this moving average of the weights
if args.quick:
    N_TRAIN, N_EVAL, N_REF, SAMPLE_STEPS, SHOWN = 4000, 500, 4000, (40, 100), 100
    N_EXACT = 2000
    TUNE_STEPS = 10
    EMA_DECAY = 0.95  # an average over the last ~20 of the 150 steps


def quality(name: str, x: torch.Tensor, seed: int) -> dict:
    """The sharp metrics of samples x (n, 2) of toy ``name``, and whether they meet the target."""
    toy = TOYS[name]
    if name == "checkerboard":
        inside, shares = checkerboard_occupancy(x)
        ok = inside >= 0.95 and ((shares - 0.125).abs() <= 0.025).all()
        return {"inside_squares": inside, "square_shares": shares, "target_met": bool(ok)}
    if name == "ring-8":
        shares, within = mode_weights(x, ring_centers(8, 2.0), std=toy.noise, n_std=3.0)
        ok = within >= 0.95 and ((shares - 0.125).abs() <= 0.025).all()
        return {"within_3sd": within, "mode_shares": shares, "target_met": bool(ok)}
    near = near_data_fraction(x, toy.make(N_REF, seed + 100), radius=3 * toy.noise)
    return {"near_data": near, "target_met": bool(near >= 0.95)}


def exact_samples(energy, half_width: float, n: int, seed: int) -> torch.Tensor:
    """n exact draws (n, 2) from p ∝ exp(−E) on the box [−half_width, half_width]², E constant on
    each of 400 × 400 squares (``ebm.sampling.grid_sample``), on the CPU. No Markov chain: this is
    the energy itself, so its metrics say whether the valleys' depths, not the sampler, are right."""
    g = torch.Generator(next(energy.parameters()).device).manual_seed(seed)
    x = grid_sample(energy, n, -half_width, half_width, dim=2, cells=400, generator=g)
    return x.cpu()


def headline(name: str, q: dict) -> str:
    """One line of the key numbers (from the JSON), for the figure's titles and the table."""
    if name == "checkerboard":
        lo, hi = 100 * min(q["square_shares"]), 100 * max(q["square_shares"])
        return f"{100 * q['inside_squares']:.1f}% in squares, each {lo:.1f}–{hi:.1f}%"
    if name == "ring-8":
        lo, hi = 100 * min(q["mode_shares"]), 100 * max(q["mode_shares"])
        return f"{100 * q['within_3sd']:.1f}% within 3σ, modes {lo:.1f}–{hi:.1f}%"
    return f"{100 * q['near_data']:.1f}% within 3× noise of data"


results, samples, models = {}, {}, {}
for name, toy in TOYS.items():
    steps = 150 if args.quick else toy.steps
    torch.manual_seed(args.seed)
    data = toy.make(N_TRAIN, args.seed)
    model = EBM(
        MLPEnergy(2, hidden=(128, 128), activation=nn.SiLU),
        data_shape=(2,),
        n_steps=toy.n_steps,
        step_size=STEP_SIZE,
        noise_scale=math.sqrt(2 * STEP_SIZE),
        clamp=(-toy.box, toy.box),
        buffer_size=2048,
        reinit_prob=toy.reinit,
        init_scale=toy.box,
        alpha=toy.alpha,
        lr=0.01,
        lr_decay_steps=steps,
        lr_final_ratio=0.02,
        seed=args.seed,
        jumps=1 if JUMPS else 0,
    )
    trainer = Trainer(
        max_epochs=None,
        max_steps=steps,
        batch_size=512,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
        ema_decay=EMA_DECAY if JUMPS else None,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    if JUMPS:  # the model is the weights' moving average; keep the last weights' exp(−E) too
        last_weights = quality(
            name, exact_samples(model.energy, toy.box, N_EXACT, args.seed + 3), args.seed
        )
        trainer.ema.copy_to(model)
    tune_steps = 0 if JUMPS else TUNE_STEPS
    # --method finetune, phase 2: the same energy, negatives = pure-Langevin chains of SHOWN steps
    # from fresh noise (the figure's sampler), at a small learning rate
    if not JUMPS:
        tune = EBM(
            model.energy,
            data_shape=(2,),
            chains="noise",
            n_steps=SHOWN,
            step_size=STEP_SIZE,
            noise_scale=math.sqrt(2 * STEP_SIZE),
            clamp=(-toy.box, toy.box),
            init_scale=toy.box,
            alpha=toy.alpha,
            lr=TUNE_LR,
            lr_decay_steps=TUNE_STEPS,
            seed=args.seed + 1,
        )
        tuner = Trainer(
            max_epochs=None,
            max_steps=TUNE_STEPS,
            batch_size=TUNE_BATCH,
            device=args.device,
            precision=args.precision,
            seed=args.seed + 1,
            progress=False,
            log_every_n_steps=None,
        )
        tuner.fit(tune, data)
    train_seconds = time.perf_counter() - start
    model.eval()
    fresh, other = toy.make(N_EVAL, args.seed + 1), toy.make(N_EVAL, args.seed + 2)
    # the chains' kernel (Langevin, with the jumps of --method jumps) from fresh uniform noise on
    # the box (not the buffer), recorded along the way
    x, done, by_steps = model.noise(N_EVAL), 0, {}
    for k in SAMPLE_STEPS:
        x, done = model.mcmc(x, k - done), k
        by_steps[k] = {**quality(name, x.cpu(), args.seed), "mmd": mmd(x.cpu(), fresh)}
        if k == SHOWN:
            samples[name] = x.cpu()
    results[name] = {
        **by_steps[SHOWN],
        "mmd_data_vs_data": mmd(other, fresh),
        "data": quality(name, other, args.seed),
        # p ∝ exp(−E) itself, by exact sampling on a 400 × 400 grid (N_EXACT draws)
        "energy_itself": quality(
            name, exact_samples(model.energy, toy.box, N_EXACT, args.seed + 3), args.seed
        ),
        "by_langevin_steps": by_steps,
        "train_steps": steps,
        "tune_steps": tune_steps,
        "train_seconds": round(train_seconds, 1),
        "final_loss": trainer.history[-1]["loss"],
    }
    if JUMPS:  # the same number of Langevin steps from fresh noise, without the jumps
        plain = model.langevin(model.noise(N_EVAL), SHOWN).cpu()
        results[name]["energy_itself_last_weights"] = last_weights
        results[name]["langevin_only"] = {
            **quality(name, plain, args.seed),
            "mmd": mmd(plain, fresh),
        }
    models[name] = model
    print(f"{name}: trained {steps} + {tune_steps} steps in {train_seconds:.0f} s", flush=True)

save_samples(args.out, args.name, samples)
path = write_results(
    args.out,
    args.name,
    {
        "seed": args.seed,
        "langevin_steps_from_noise": SHOWN,
        "langevin_steps_recorded": list(SAMPLE_STEPS),
        "langevin_step_size": STEP_SIZE,
        "langevin_noise_scale": math.sqrt(2 * STEP_SIZE),
        "n_samples": N_EVAL,
        "method": args.method,
        "jumps_per_langevin_block": 1 if JUMPS else 0,
        "ema_decay": EMA_DECAY if JUMPS else None,
        "tune": None if JUMPS else {"steps": TUNE_STEPS, "batch_size": TUNE_BATCH, "lr": TUNE_LR},
        "all_targets_met": all(r["target_met"] for r in results.values()),
        "datasets": results,
    },
)

# the titles and the table quote the JSON, so every number shown is one a reader can look up
saved = json.loads(path.read_text())["datasets"]

# ---- the figure: one row per toy, the learned energy (left) and fresh-noise samples (right) -----
fig, axes = plt.subplots(len(TOYS), 2, figsize=(11.0, 4.8 * len(TOYS)), squeeze=False)
for row, (name, toy) in enumerate(TOYS.items()):
    model, x, r = models[name], samples[name], saved[name]
    box = (-toy.box, toy.box)
    # E − E's median on the data, clipped ENERGY_RANGE nats above it: the valleys and the walls
    # between them show, the far walls (hundreds of nats) do not flatten the colours
    with torch.no_grad():
        E, _, _ = evaluate_on_grid(model.energy, box, box, n=200)
        ref = toy.make(N_EVAL, args.seed + 1).to(trainer.device)
        floor = float(model.energy(ref).median().cpu())
    ax = axes[row, 0]
    energy_image(
        ax,
        E - floor,
        box,
        box,
        vmin=-2.0,
        vmax=ENERGY_RANGE,
        label="E(x) − median E(data) (nats)",
    )
    ax.set_title(
        f"{name}: learned energy (low = dark)\nexp(−E) itself: {headline(name, r['energy_itself'])}"
    )
    ax = axes[row, 1]
    ax.scatter(x[:, 0], x[:, 1], s=1.5, c="C1", alpha=0.6, linewidths=0, label="samples")
    if name == "checkerboard":
        for i in range(4):
            for j in range(4):
                if (i + j) % 2 == 0:
                    ax.add_patch(
                        Rectangle((2 * i - 4, 2 * j - 4), 2, 2, fill=False, ec="0.3", lw=0.8)
                    )
    elif name == "ring-8":
        for c in ring_centers(8, 2.0):
            ax.add_patch(Circle(c.tolist(), 3 * toy.noise, fill=False, ec="0.3", lw=0.8))
    else:  # the data on top, thin, so both show
        d = toy.make(N_EVAL, args.seed + 1)
        ax.scatter(d[:, 0], d[:, 1], s=0.6, c="0.15", alpha=0.5, linewidths=0, label="fresh data")
        ax.legend(loc="upper left", markerscale=6, frameon=False)
    how = f", a jump per {toy.n_steps}" if JUMPS else ""
    ax.set_title(f"{SHOWN} Langevin steps from noise{how}\n{headline(name, r)}")
    for a in axes[row]:
        a.set_xlim(*box)
        a.set_ylim(*box)
        a.set_aspect("equal")
        a.set_xlabel("x₁")
        a.set_ylabel("x₂")
METHOD_TITLE = {
    "jumps": "persistent contrastive divergence, chains with uniform jumps, averaged weights",
    "finetune": "persistent contrastive divergence + short-run fine-tuning",
}
fig.suptitle(
    f"EBM by {METHOD_TITLE[args.method]} (seed {args.seed})\n"
    "outlines: where the targets count a sample as good"
)
fig.tight_layout(rect=(0, 0, 1, 0.975))  # room for the two-line suptitle
save_figure(fig, args.out, args.name)

print_table(
    f"{args.name} (seed {args.seed}, --method {args.method}): samples after {SHOWN} Langevin "
    "steps from fresh noise",
    {
        name: {
            "train steps": r["train_steps"] + r["tune_steps"],
            "MMD": r["mmd"],
            "MMD data": r["mmd_data_vs_data"],
            "samples (sharp metric)": headline(name, r),
            "exp(−E) itself": headline(name, r["energy_itself"]),
            **({"Langevin only": headline(name, r["langevin_only"])} if JUMPS else {}),
            "target": "met" if r["target_met"] else "MISSED",
        }
        for name, r in ((name, saved[name]) for name in TOYS)
    },
    header="toy",
)
