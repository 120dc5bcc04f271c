"""The Warwick slides' diffusion tutorial, corrected: 1-D data with 70 % of the mass at −0.75 and
30 % at +0.75 (σ = 0.05).

The tutorial's schedule (T = 50, β linear from 1e-4 to 0.02) leaves ᾱ_T ≈ 0.6: its "noise" x_T
still holds most of the signal, so sampling from N(0, 1) is wrong; and x = x_T − ε_θ(x_T, T) is
not the DDPM sampler. We keep the β range and take T = 1000 steps (ᾱ_T ≈ 4e−5), train an
ε-predicting MLP, and sample, with an exponential moving average of its weights, by the ancestral
(DDPM) chain and the probability-flow ODE (torchdiffeq). Target: the fraction of samples near −0.75 within 0.03 of 0.70.

The tutorial's failure is shown too (diffusion_1d_warwick.png, key "warwick_tutorial"): the same
model trained on T = 50, its x_T against the closed-form q(x_T) and N(0, 1), its one-step
generation (trained and exact ε), and its DDPM chain from N(0, 1), against the corrected sampler.
"""

import math

import matplotlib.pyplot as plt
import torch

from ebm.models import Diffusion
from ebm.models.diffusion import linear_schedule
from ebm.plot import histogram_energy, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
use_style()


def warwick_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    left = torch.rand(n, 1, generator=g) < 0.7
    return torch.where(left, -0.75, 0.75) + 0.05 * torch.randn(n, 1, generator=g)


def fraction_left(x):
    """Samples within 0.25 (5σ) of −0.75, over all samples."""
    return float(((x + 0.75).abs() < 0.25).float().mean())


warwick_alpha_bar_T = float(torch.prod(1 - linear_schedule(50, 1e-4, 0.02)))

torch.manual_seed(args.seed)
data = warwick_data(20000, args.seed)
model = Diffusion(1, hidden=(128, 128), T=1000, schedule="linear", lr=2e-3)
steps = 1200 if args.quick else 6000


def fitted_trainer(diffusion):
    """Train ``diffusion`` on ``data`` (both models of this recipe alike); returns the Trainer."""
    trainer = Trainer(
        max_epochs=None,
        max_steps=steps,
        batch_size=512,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        ema_decay=0.99 if args.quick else 0.999,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(diffusion, data)
    return trainer


trainer = fitted_trainer(model)
model.eval()
n = 1000 if args.quick else 10000
# the raw (last-step) weights first, for comparison, with the same noise as the EMA samples below
g = torch.Generator(device=trainer.device).manual_seed(args.seed)
raw_fractions = {
    "ancestral": fraction_left(model.sample(n, method="ancestral", generator=g).cpu()),
    "ode": fraction_left(model.sample(n, method="ode", generator=g, rtol=1e-4, atol=1e-4).cpu()),
}
trainer.ema.copy_to(model)  # sample with the weight average: it fixes the mode weights
g = torch.Generator(device=trainer.device).manual_seed(args.seed)
ancestral, path = model.sample(n, method="ancestral", generator=g, return_trajectory=True)
ode = model.sample(n, method="ode", generator=g, rtol=1e-4, atol=1e-4)
ancestral, ode, path = ancestral.cpu(), ode.cpu(), path.cpu()
fractions = {"ancestral": fraction_left(ancestral), "ode": fraction_left(ode)}

# ---- histograms ---------------------------------------------------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (name, x) in zip(
    axes, {"ancestral (DDPM)": ancestral, "probability-flow ODE": ode}.items()
):
    ax.hist(data[:n, 0].numpy(), bins=80, range=(-1.5, 1.5), density=True, alpha=0.5, label="data")
    ax.hist(x[:, 0].numpy(), bins=80, range=(-1.5, 1.5), density=True, alpha=0.5, label=name)
    ax.set_title(f"{name}:\n{100 * fraction_left(x):.1f} % near −0.75 (target 70 %)")
    ax.set_xlabel("x")
    ax.legend()
axes[0].set_ylabel("density (histogram, 80 bins)")
fig.tight_layout()
save_figure(fig, args.out, "diffusion_1d")

# ---- forward and reverse processes as energies −log p(x_t) on one scale -------------------------
# one scale for every t and both processes: the 70 % mode's well lies ln(0.7/0.3) ≈ 0.85 nats
# below the 30 % one's, and the wells flatten into the parabola of N(0, 1) as t grows
ts = [0, 50, 100, 200, 1000]
x0 = data[:n]
forward = [x0[:, 0]] + [
    model.q_sample(
        x0.to(trainer.device),
        torch.full((n,), t, device=trainer.device),
        torch.randn(n, 1, device=trainer.device),
    ).cpu()[:, 0]
    for t in ts[1:]
]
reverse = [path[model.T - t, :, 0] for t in ts]  # path[k] is x_{T−k}
colours = plt.get_cmap("plasma")([0.85 * k / (len(ts) - 1) for k in range(len(ts))])
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
for ax, series, title in (
    (axes[0], forward, "forward process q(x_t | x_0)"),
    (axes[1], reverse, "reverse process (ancestral samples)"),
):
    for t, s, colour in zip(ts, series, colours):
        histogram_energy(ax, s, bins=96, limits=(-4, 4), color=colour, lw=1.3, label=f"t = {t}")
    ax.set_title(title)
    ax.set_xlabel("x_t")
axes[0].set_ylabel("energy −log p(x_t) (nats)")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncols=len(ts), frameon=False)
fig.suptitle(f"Energies of x_t from {n} samples per step (histograms; low = likely)")
fig.tight_layout(rect=(0, 0.07, 1, 1))
save_figure(fig, args.out, "diffusion_1d_processes")
save_samples(
    args.out,
    "diffusion_1d",
    {
        "data": data[:n],
        "ancestral": ancestral,
        "ode": ode,
        "t": torch.tensor(ts),
        "forward": torch.stack(forward),  # (len(t), n): x_t for t in "t"
        "reverse": torch.stack(reverse),
    },
)

# ---- the Warwick tutorial itself, shown: T = 50, x_T ~ N(0, 1), one step x = x_T − ε_θ(x_T, T) --
# Same data, network, steps and EMA as above, but the tutorial's schedule (accepted here only by
# raising max_alpha_bar_T). Its forward marginal is closed-form: x_T | x_0 ~ N(√ᾱ x_0, 1 − ᾱ), so
# q(x_T) = Σ_k w_k N(√ᾱ m_k, ᾱ s² + 1 − ᾱ) with w = (0.7, 0.3), m = (−0.75, 0.75), s = 0.05.
W, M, S = torch.tensor([0.7, 0.3], dtype=torch.float64), torch.tensor([-0.75, 0.75]).double(), 0.05


def q_T_log_density(x, ab):
    """log q(x_T = x) for the data mixture after a schedule with ᾱ_T = ab (closed form)."""
    var = ab * S**2 + 1 - ab
    log_comp = W.log() - 0.5 * (x.unsqueeze(-1) - ab**0.5 * M) ** 2 / var
    return torch.logsumexp(log_comp, -1) - 0.5 * math.log(2 * math.pi * var)


def kl_to_standard_normal(ab):
    """KL(q(x_T) ‖ N(0, 1)) in nats, by quadrature on a fine grid (closed-form densities)."""
    x = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    log_q = q_T_log_density(x, ab)
    log_n = -0.5 * x**2 - 0.5 * math.log(2 * math.pi)
    return float(torch.trapezoid(log_q.exp() * (log_q - log_n), x))


def exact_eps(x, ab):
    """E[ε | x_T = x] = −√(1 − ᾱ) ∇log q(x_T) (x (n, 1)): what ε_θ(x, T) should learn."""
    x = x.double()
    var = ab * S**2 + 1 - ab
    resp = torch.softmax(W.log() - 0.5 * (x - ab**0.5 * M) ** 2 / var, dim=1)
    score = (resp * (ab**0.5 * M - x) / var).sum(1, keepdim=True)
    return -((1 - ab) ** 0.5) * score


def wasserstein_1(a, b):
    """W1 between two equal-size 1-D samples: the mean gap of their sorted values."""
    return float((a.flatten().sort().values - b.flatten().sort().values).abs().mean())


tutorial = Diffusion(
    1, hidden=(128, 128), betas=linear_schedule(50, 1e-4, 0.02), lr=2e-3, max_alpha_bar_T=1.0
)
tutorial_trainer = fitted_trainer(tutorial)
tutorial_trainer.ema.copy_to(tutorial)
tutorial.eval()
ab_50 = float(tutorial.alpha_bars[-1])
dev = tutorial_trainer.device
fresh = warwick_data(n, args.seed + 1)  # held-out data: every W1 below is to these
g = torch.Generator().manual_seed(args.seed + 2)  # not seed + 1: its stream drew fresh's modes
x_T_forward = tutorial.q_sample(
    fresh.to(dev), torch.full((n,), 50, device=dev), torch.randn(n, 1, generator=g).to(dev)
).cpu()
z = torch.randn(n, 1, generator=g)
with torch.no_grad():
    one_step = (z.to(dev) - tutorial.eps_model(z.to(dev), torch.full((n,), 50, device=dev))).cpu()
one_step_exact = (z.double() - exact_eps(z, ab_50)).float()
g = torch.Generator(device=dev).manual_seed(args.seed + 3)
tutorial_ancestral = tutorial.sample(n, method="ancestral", generator=g).cpu()
normal = torch.randn(n, 1, generator=torch.Generator().manual_seed(args.seed + 4))
samplers = {
    "one_step_T50": one_step,
    "one_step_T50_exact_eps": one_step_exact,
    "ancestral_T50_from_N01": tutorial_ancestral,
    "ancestral_T1000": ancestral,
    "ode_T1000": ode,
    "data_vs_data": data[:n],
}
warwick_results = {
    "alpha_bar_T": ab_50,
    "x_T_mean_closed_form": -0.3 * ab_50**0.5,  # √ᾱ (0.7·(−0.75) + 0.3·0.75)
    "x_T_std_closed_form": (1 - ab_50 + ab_50 * (S**2 + 0.75**2 - 0.3**2)) ** 0.5,
    "x_T_mean_forward_samples": float(x_T_forward.mean()),
    "x_T_std_forward_samples": float(x_T_forward.std()),
    "kl_q_x_T_to_N01": kl_to_standard_normal(ab_50),
    "kl_q_x_T_to_N01_T1000": kl_to_standard_normal(float(model.alpha_bars[-1].double())),
    "w1_x_T_to_N01": wasserstein_1(x_T_forward, normal),
    "w1_to_data": {k: wasserstein_1(v, fresh) for k, v in samplers.items()},
    "fraction_near_-0.75": {k: fraction_left(v) for k, v in samplers.items()},
    "fraction_near_either_mode": {
        k: fraction_left(v) + fraction_left(-v) for k, v in samplers.items()
    },
    "w1_one_step_trained_vs_exact_eps": wasserstein_1(one_step, one_step_exact),
}

PRETTY = {
    "one_step_T50": "one step from x_T, trained ε",
    "ancestral_T50_from_N01": "T = 50 chain from N(0, 1)",
    "ancestral_T1000": "T = 1000 chain (corrected)",
}
fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
grid = torch.linspace(-4, 4, 801, dtype=torch.float64)
ax = axes[0]
ax.hist(x_T_forward[:, 0].numpy(), bins=80, range=(-4, 4), density=True, alpha=0.5, label="x_T")
ax.plot(grid, q_T_log_density(grid, ab_50).exp(), "C0", label="q(x_T), closed form")
ax.plot(grid, (-0.5 * grid**2).exp() / math.sqrt(2 * math.pi), "k--", label="N(0, 1)")
ax.set_title(
    f"T = 50: ᾱ_T = {ab_50:.2f}, so x_T is not N(0, 1)\n"
    f"KL(q(x_T) ‖ N(0, 1)) = {warwick_results['kl_q_x_T_to_N01']:.3f} nats"
)
ax.set_xlabel("x_T")
ax.set_ylabel("density")
ax.legend(fontsize=8)
for ax, (title, keys) in zip(
    axes[1:],
    (
        ("the tutorial's one step x = x_T − ε_θ(x_T, 50)", ("one_step_T50",)),
        (
            "the DDPM chain: T = 50 from N(0, 1) vs T = 1000",
            ("ancestral_T50_from_N01", "ancestral_T1000"),
        ),
    ),
):
    ax.hist(fresh[:, 0].numpy(), bins=120, range=(-3, 3), density=True, color="0.6", label="data")
    for k, colour in zip(keys, ("C3", "C1") if len(keys) == 2 else ("C3",)):
        w1 = warwick_results["w1_to_data"][k]
        ax.hist(
            samplers[k][:, 0].numpy(),
            bins=120,
            range=(-3, 3),
            density=True,
            histtype="step",
            color=colour,
            lw=1.3,
            label=(
                f"{PRETTY[k]}: W1 = {w1:.3f},\n"
                f"{100 * warwick_results['fraction_near_-0.75'][k]:.1f} % near −0.75 (data 70 %)"
            ),
        )
    if keys == ("one_step_T50",):
        ax.hist(
            one_step_exact[:, 0].numpy(),
            bins=120,
            range=(-3, 3),
            density=True,
            histtype="step",
            color="k",
            ls="--",
            label="same step, exact ε",
        )
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("density (histogram, 120 bins)")
    ax.set_ylim(top=1.55 * ax.get_ylim()[1])  # head room: the legend never covers a mode
    ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
save_figure(fig, args.out, "diffusion_1d_warwick")
save_samples(
    args.out,
    "diffusion_1d_warwick",
    {"x_T_forward": x_T_forward, "held_out_data": fresh} | samplers,
)

write_results(
    args.out,
    "diffusion_1d",
    {
        "warwick_tutorial": warwick_results,
        "warwick_alpha_bar_T": warwick_alpha_bar_T,
        "alpha_bar_T": float(model.alpha_bars[-1]),
        "T": model.T,
        "steps": steps,
        "fraction_near_-0.75": fractions,
        "fraction_near_-0.75_without_ema": raw_fractions,
        "target": "0.70 +- 0.03",
        "within_target": {k: abs(v - 0.70) <= 0.03 for k, v in fractions.items()},
    },
)
print_table(
    "diffusion on the 70/30 mixture: fraction of samples near −0.75 (target 0.70 ± 0.03)",
    {
        name: {
            "EMA weights": v,
            "within target": abs(v - 0.70) <= 0.03,
            "last weights": raw_fractions[name],
        }
        for name, v in fractions.items()
    },
    header="sampler",
)
print_table(
    "noise schedules: ᾱ_T (should be ≈ 0)",
    {"Warwick, T = 50": warwick_alpha_bar_T, f"ours, T = {model.T}": float(model.alpha_bars[-1])},
)
print_table(
    f"the Warwick tutorial (T = 50, ᾱ_T = {ab_50:.3f}) vs the corrected sampler: W1 to held-out data",
    {
        k: {
            "W1 to data": warwick_results["w1_to_data"][k],
            "near −0.75": warwick_results["fraction_near_-0.75"][k],
            "near either mode": warwick_results["fraction_near_either_mode"][k],
        }
        for k in samplers
    },
    header="samples",
)
