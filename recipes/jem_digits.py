"""Joint energy-based model (JEM, Grathwohl et al. 2020) on digits: one classifier, read as
p(y|x) = softmax(f(x)) and as an energy E(x) = −logsumexp_y f(x)[y], trained with cross-entropy
plus the persistent-SGLD generative term, against the same net trained as a plain classifier (same
seed, same epochs, same optimiser: ``JEM(generative_weight=0)``).

Reported: test accuracy, ECE, NLL, Brier score, and the AUROC of telling test digits from ones turned 90°
(the MC-dropout recipe's OOD set) by three scores: the energy (−E(x), high = in distribution),
the max-softmax probability, and MC dropout's predictive entropy (the net has dropout, p = 0.1).
Samples: unconditional (the SGLD replay buffer, then more SGLD) and class-conditional (SGLD on
E(x, y) = −f(x)[y] from noise). Default data: scikit-learn's 8×8 digits and an MLP; ``--data-dir``
with the MNIST IDX files runs 28×28 MNIST (a 10 000-image subset, written as ``jem_digits_mnist``).

Every JEM − plain difference (accuracy, ECE, NLL, Brier, OOD AUROC against the plain net's best
of its three scores) comes with a 95 % paired bootstrap interval over the test points
(``ebm.metrics.bootstrap_interval``), in the JSON's ``jem_minus_plain`` and the figure's title.

The issue's targets: accuracy within 1 point of the plain classifier, better ECE, better OOD
AUROC. Six full runs (the table is in the sampling guide; ``figures/jem_digits*.json``) meet them
in none:

- 8×8 digits (seeds 0, 1, 2 with the paper's data noise 0.03, seed 0 without): accuracy and OOD
  met on every run (energy AUROC 0.975–0.999 against at most 0.67); ECE missed on every run,
  resolved by the intervals: the plain net is already calibrated, JEM is *under*-confident.
- MNIST (10 000 training images): ECE met with and without data noise (JEM lowers the
  over-confident plain net's ECE and NLL); with noise accuracy misses by 0.1 point (−1.1) and the
  OOD gain over MC dropout's entropy is not resolved; without noise OOD is worse.

Deviations from the paper's recipe (a wide ResNet on CIFAR): an MLP d→256→256→10 (SiLU,
dropout 0.1), lr 1e-3 with a 100-step warm-up (paper: 1e-4, 1000 steps), a 2000-slot buffer
(paper: 10 000), 60 epochs. The SGLD settings are the paper's (20 steps of size 1, noise 0.01,
re-initialisation 0.05, uniform noise on [−1, 1]), and so are alpha = 0 and the data noise
(``--data-noise``, 0.03 by default; the control net gets the same noise). Two earlier trial runs
(not committed) came out like the no-noise run: the energy penalty alpha = 0.01, and the chains
clamped to [−1, 1].
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import MCDropout, mean_probs, predictive_entropy
from ebm.data import digits, mnist, rotate_images
from ebm.metrics import bootstrap_interval, brier_score, expected_calibration_error, ood_auroc
from ebm.models import JEM
from ebm.plot import image_grid, reliability_diagram, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument(
        "--data-noise",
        type=float,
        default=0.03,
        help="std of the Gaussian noise added to the training images on [-1, 1], for both nets "
        "(default 0.03, the paper's; 0: none)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="prefix of every output file (default jem_digits, or jem_digits_mnist with "
        "--data-dir), e.g. --seed 1 --name jem_digits_seed1",
    )


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
name = args.name or ("jem_digits_mnist" if args.data_dir else "jem_digits")

# ---- data: images in [-1, 1], the range of the SGLD chains' uniform initial noise ---------------
if args.data_dir:
    (x_train, y_train), (x_test, y_test) = mnist(args.data_dir), mnist(args.data_dir, train=False)
    n_train = 2048 if args.quick else 10000
    x_train, y_train, x_test, y_test = (
        x_train[:n_train],
        y_train[:n_train],
        x_test[:2000],
        y_test[:2000],
    )
    data_name = f"MNIST ({n_train} training images)"
else:
    x_train, y_train = digits("train")
    x_test, y_test = digits("test")
    data_name = "8×8 digits"
shape = tuple(x_train.shape[1:])
ood01 = rotate_images(x_test, torch.full((len(x_test),), 90.0)).clamp(0.0, 1.0)
x_train, x_test, x_ood = (2 * x - 1 for x in (x_train, x_test, ood01))

epochs = 3 if args.quick else 60
hidden = 256
settings = dict(
    n_steps=10 if args.quick else 20,
    step_size=1.0,
    noise_scale=0.01,
    buffer_size=512 if args.quick else 2000,
    reinit_prob=0.05,
    alpha=0.0,  # the paper's setting; raise it (e.g. 0.01) if the energies drift off
    data_noise=args.data_noise,
    lr=1e-3,
    warmup_steps=100,
    seed=args.seed,
)


def make_net() -> nn.Module:
    torch.manual_seed(args.seed)  # both models start from the same weights
    d = torch.Size(shape).numel()
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(d, hidden),
        nn.SiLU(),
        nn.Dropout(0.1),
        nn.Linear(hidden, hidden),
        nn.SiLU(),
        nn.Dropout(0.1),
        nn.Linear(hidden, 10),
    )


def fit(generative_weight: float) -> JEM:
    model = JEM(make_net(), shape, 10, generative_weight=generative_weight, **settings)
    Trainer(
        max_epochs=epochs,
        batch_size=64,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        log_every_n_steps=None,
    ).fit(model, (x_train, y_train))
    return model.cpu().eval()


models = {"plain classifier": fit(0.0), "JEM": fit(1.0)}


# ---- evaluation ---------------------------------------------------------------------------------
def nll(probs, labels):
    """Mean −log p(y|x) of the true labels (nats): a proper scoring rule, like the Brier score."""
    return -probs.gather(1, labels.view(-1, 1)).clamp_min(1e-30).log().mean()


# The OOD scores, per test point (high = out of distribution): −E(x) reversed, i.e. the energy;
# the max-softmax probability, negated; MC dropout's predictive entropy.
SCORES = {
    "energy": lambda m: (m["energy_test"], m["energy_ood"]),
    "max_softmax": lambda m: (-m["probs"].max(1).values, -m["probs_ood"].max(1).values),
    "mc_entropy": lambda m: (m["entropy_test"], m["entropy_ood"]),
}


@torch.no_grad()
def evaluate(model: JEM) -> dict:
    probs = model.predict_proba(x_test)
    mc = MCDropout(model.classifier, n_samples=50, seed=args.seed)
    pred_in, pred_out = mc.predict(x_test), mc.predict(x_ood)
    m = {
        "probs": probs,
        "probs_ood": model.predict_proba(x_ood),
        "energy_test": model.energy(x_test),
        "energy_ood": model.energy(x_ood),
        "entropy_test": predictive_entropy(pred_in),
        "entropy_ood": predictive_entropy(pred_out),
        "accuracy": (probs.argmax(1) == y_test).float().mean(),
        "ece": expected_calibration_error(probs, y_test),
        "nll": nll(probs, y_test),
        "brier": brier_score(probs, y_test),
        "accuracy_mc": (mean_probs(pred_in).argmax(1) == y_test).float().mean(),
        "ece_mc": expected_calibration_error(mean_probs(pred_in), y_test),
    }
    for score, pair in SCORES.items():  # ood_auroc: OOD inputs are the positives
        m[f"ood_auroc_{score}"] = ood_auroc(*pair(m))
    return m


metrics = {label: evaluate(model) for label, model in models.items()}
jem, plain = models["JEM"], models["plain classifier"]

# row i of each: test digit i (and its turned copy)
POINTWISE = ("probs", "probs_ood", "energy_test", "energy_ood", "entropy_test", "entropy_ood")


def paired_difference(score_jem, score_plain=None) -> list[float]:
    """score_jem(JEM's rows) − score_plain(the plain net's rows) on the same test points, each
    score a function of ({name in POINTWISE: rows}, labels): [estimate, low, high], the 95 %
    percentile bootstrap over test points (2000 resamples, 200 with --quick; a test digit and
    its turned copy are resampled together)."""
    score_plain = score_plain or score_jem
    rows = [metrics[label][k] for label in ("JEM", "plain classifier") for k in POINTWISE]
    n = len(POINTWISE)

    def difference(*t):
        jem_rows, plain_rows = dict(zip(POINTWISE, t[:n])), dict(zip(POINTWISE, t[n:-1]))
        return score_jem(jem_rows, t[-1]) - score_plain(plain_rows, t[-1])

    r = bootstrap_interval(
        (*rows, y_test),
        difference,
        n_bootstrap=200 if args.quick else 2000,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return [float(r.estimate), float(r.low), float(r.high)]


def auroc_best_plain(m, y):
    """The plain net's best OOD score: max-softmax, its energy or MC dropout's entropy."""
    return max(ood_auroc(*pair(m)) for pair in SCORES.values())


differences = {
    "accuracy": paired_difference(lambda m, y: (m["probs"].argmax(1) == y).double().mean()),
    "ece": paired_difference(lambda m, y: expected_calibration_error(m["probs"], y)),
    "nll": paired_difference(lambda m, y: nll(m["probs"], y)),
    "brier": paired_difference(lambda m, y: brier_score(m["probs"], y)),
    "ood_auroc": paired_difference(lambda m, y: ood_auroc(*SCORES["energy"](m)), auroc_best_plain),
}
# the targets, on the point estimates (the intervals say how sure each one is)
jem_m, plain_m = metrics["JEM"], metrics["plain classifier"]
targets = {
    "target_accuracy_within_1_point": bool(jem_m["accuracy"] >= plain_m["accuracy"] - 0.01),
    "target_better_ece": bool(jem_m["ece"] < plain_m["ece"]),
    "target_better_ood_auroc": bool(
        jem_m["ood_auroc_energy"] > max(plain_m[f"ood_auroc_{k}"] for k in SCORES)
    ),
}

g = torch.Generator().manual_seed(args.seed)
n_more = 20 if args.quick else 100
unconditional = jem.sample(40, n_steps=n_more, from_buffer=True, generator=g)
labels = torch.arange(10).repeat_interleave(6)
conditional = jem.sample(len(labels), y=labels, n_steps=50 if args.quick else 300, generator=g)
to01 = lambda x: (x + 1) / 2  # noqa: E731
cond_acc = (jem.predict_proba(conditional).argmax(1) == labels).float().mean()

# ---- figure -------------------------------------------------------------------------------------
fig = plt.figure(figsize=(12, 8.5), layout="constrained")
spec = fig.add_gridspec(2, 3, height_ratios=[1.1, 1])
image_grid(
    fig.add_subplot(spec[0, 0:1]),
    to01(unconditional),
    nrow=8,
    title=f"unconditional: replay buffer + {n_more} SGLD steps",
)
image_grid(
    fig.add_subplot(spec[0, 1:2]),
    to01(conditional).reshape(10, 6, *shape).transpose(0, 1).reshape(-1, *shape),
    nrow=10,
    title=f"class-conditional, columns y = 0..9\n(JEM reads {100 * cond_acc:.0f}% as their class)",
)


def energy_histogram(ax, m: dict, label: str, color: str) -> None:
    """Test vs OOD energies of one net, on that net's own scale (energies of two nets differ by
    an arbitrary offset: only the separation within a panel means something)."""
    both = torch.cat([m["energy_test"], m["energy_ood"]])
    bins = torch.linspace(float(both.min()), float(both.max()), 40)
    ax.hist(m["energy_test"], bins=bins, alpha=0.6, color=color, label="test digits", density=True)
    ax.hist(
        m["energy_ood"], bins=bins, alpha=0.6, color="C7", label="turned 90° (OOD)", density=True
    )
    ax.set_xlabel(f"{label}: E(x) = −logsumexp f(x) (low = likely)")
    ax.set_ylabel("density")
    ax.set_title(f"{label} energy: OOD AUROC {float(m['ood_auroc_energy']):.3f}")
    ax.legend(fontsize=8)


energy_histogram(fig.add_subplot(spec[0, 2]), metrics["JEM"], "JEM", "C1")
for k, (label, m) in enumerate(metrics.items()):
    reliability_diagram(
        fig.add_subplot(spec[1, k]),
        m["probs"],
        y_test,
        title=f"{label}: accuracy {100 * float(m['accuracy']):.1f}%",
        color=f"C{k}",
    )
energy_histogram(fig.add_subplot(spec[1, 2]), metrics["plain classifier"], "plain classifier", "C0")


def unresolved(key: str, threshold: float = 0.0) -> bool:
    """Whether the interval of ``differences[key]`` reaches the target's threshold (the
    difference the target needs): then resampling the test points could flip the verdict."""
    low, high = differences[key][1:]
    return low <= threshold <= high


def verdict(key: str, target: str, threshold: float = 0.0, scale: float = 1.0, unit="") -> str:
    """The estimate, its interval, and the target's verdict on the estimate ("unresolved")."""
    est, low, high = (scale * v for v in differences[key])
    mark = "met" if targets[target] else "MISSED"
    if unresolved(key, threshold):
        mark += ", unresolved"
    return f"{est:+.3g}{unit} [{low:+.3g}, {high:+.3g}] ({mark})"


fig.suptitle(
    f"JEM vs the same net as a plain classifier ({data_name}, {epochs} epochs, "
    f"{len(x_test)} test images, OOD = test turned 90°)\n"
    f"JEM − plain [95 % bootstrap over test points]: accuracy "
    f"{verdict('accuracy', 'target_accuracy_within_1_point', -0.01, 100, ' pt')}, "
    f"ECE {verdict('ece', 'target_better_ece')},\nOOD AUROC of JEM's energy − the plain net's "
    f"best score {verdict('ood_auroc', 'target_better_ood_auroc')}"
)
save_figure(fig, args.out, name)

# ---- numbers ------------------------------------------------------------------------------------
keys = (
    "accuracy",
    "ece",
    "nll",
    "brier",
    "accuracy_mc",
    "ece_mc",
    "ood_auroc_energy",
    "ood_auroc_max_softmax",
    "ood_auroc_mc_entropy",
)
short = {"plain classifier": "plain", "JEM": "jem"}
results = {
    "data": "mnist" if args.data_dir else "digits8x8",
    "epochs": epochs,
    "n_test": len(x_test),
    "settings": settings,
    **{f"{short[label]}_{k}": m[k] for label, m in metrics.items() for k in keys},
    "conditional_samples_accuracy": cond_acc,
    # JEM − plain on the same test points: [estimate, 95 % bootstrap low, high]
    "jem_minus_plain": differences,
    # the sharper reading of the ECE target: outside what resampling the test points gives?
    "ece_difference_resolved": not unresolved("ece"),
}
results.update(targets)
write_results(args.out, name, results)
save_samples(
    args.out,
    name,
    {
        "unconditional": unconditional,
        "conditional": conditional,
        "conditional_labels": labels,
        "test_labels": y_test,
        **{f"{short[label]}_probs": m["probs"] for label, m in metrics.items()},
        **{f"{short[label]}_energy_test": m["energy_test"] for label, m in metrics.items()},
        **{f"{short[label]}_energy_ood": m["energy_ood"] for label, m in metrics.items()},
    },
)
print_table(
    f"{data_name}, {epochs} epochs, {len(x_test)} test images; OOD = test images turned 90°",
    {
        label: {
            "accuracy": m["accuracy"],
            "ECE": m["ece"],
            "NLL": m["nll"],
            "Brier": m["brier"],
            "MC accuracy": m["accuracy_mc"],
            "MC ECE": m["ece_mc"],
            "AUROC −E(x)": m["ood_auroc_energy"],
            "AUROC max p": m["ood_auroc_max_softmax"],
            "AUROC MC entropy": m["ood_auroc_mc_entropy"],
        }
        for label, m in metrics.items()
    },
    header="model",
)
print_table(
    "JEM − plain classifier on the same test points (95 % bootstrap interval over test points)",
    {k: {"estimate": v[0], "low": v[1], "high": v[2]} for k, v in differences.items()},
    header="difference",
)
