"""Collapse: a Siamese energy trained with the plain energy loss drives every pair, matching or
not, to near-zero energy. Contrastive and hinge losses push the non-matching pairs up and keep
a gap.

The energy of a pair of 8×8 digits is the distance between their embeddings (the notes' face
verification machine, Hadsell, Chopra & LeCun 2006). Each training example is a triplet
(anchor, same digit, other digit); the three models start from the same weights.

    python recipes/siamese_collapse.py [--quick] [--device auto] [--seed 0] [--out figures]
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

import ebm.losses as L
from ebm.data import digits
from ebm.energies import SiameseEnergy, mlp
from ebm.recipe import parse_args, print_table, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
EPOCHS = 10 if args.quick else 60
MARGIN = 1.0

# ---- data: triplets (anchor, same digit, other digit) of the bundled 8×8 digits ----------------
x_train, y_train = digits("train")
x_test, y_test = digits("test")


def triplets(labels, seed):
    """For each anchor i: a random other index of its class and a random index of another class."""
    g = torch.Generator().manual_seed(seed)
    anchor = torch.arange(len(labels))
    pos, neg = torch.empty_like(anchor), torch.empty_like(anchor)
    for c in labels.unique():
        mine, others = (labels == c).nonzero().squeeze(1), (labels != c).nonzero().squeeze(1)
        k = len(mine)
        shift = torch.randint(1, k, (k,), generator=g)  # never the anchor itself
        pos[mine] = mine[(torch.arange(k) + shift) % k]
        neg[mine] = others[torch.randint(0, len(others), (k,), generator=g)]
    return anchor, pos, neg


def as_images(x, index):
    return tuple(x[i] for i in index)  # (anchors, positives, negatives), each (N, 1, 8, 8)


train_data = as_images(x_train, triplets(y_train, seed=args.seed))
test_a, test_pos, test_neg = as_images(x_test, triplets(y_test, seed=args.seed + 1))

# ---- the losses: p = energy of the matching pair, n = energy of the non-matching one ---------------
LOSSES = {
    "energy loss": lambda p, n: L.energy_loss(p),  # never looks at the non-matching pair
    "contrastive": lambda p, n: L.contrastive_loss(
        torch.cat([p, n]),
        torch.cat([torch.ones_like(p, dtype=torch.bool), torch.zeros_like(n, dtype=torch.bool)]),
        margin=MARGIN,
    ),
    "hinge": lambda p, n: L.hinge_loss(p, n, margin=MARGIN),
}


class PairEBM(nn.Module):
    """A SiameseEnergy on digit pairs, trained with one loss on (matching, non-matching) energies."""

    def __init__(self, loss, seed: int):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the same initial weights for every loss
            embed = nn.Sequential(nn.Flatten(), mlp([64, 128, 16], nn.ReLU))
        self.energy, self.loss = SiameseEnergy(embed), loss

    def training_step(self, batch):
        anchor, pos, neg = batch
        p, n = self.energy(anchor, pos), self.energy(anchor, neg)  # (B,), (B,)
        return {"loss": self.loss(p, n), "p": p.mean().detach(), "n": n.mean().detach()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


@torch.no_grad()
def test_energies(model):
    model = model.cpu().eval()
    return model.energy(test_a, test_pos), model.energy(test_a, test_neg)


def summary(p, n):
    # AUC: chance that a non-matching pair has a higher energy than a matching one
    auc = (n[None, :] > p[:, None]).float().mean().item()
    return {
        "matching": p.mean().item(),
        "non_matching": n.mean().item(),
        "gap": (n.mean() - p.mean()).item(),
        "auc": auc,
    }


energies = {"untrained": test_energies(PairEBM(LOSSES["hinge"], args.seed))}
results = {"untrained": summary(*energies["untrained"])}
for name, loss in LOSSES.items():
    model = PairEBM(loss, args.seed)
    Trainer(
        max_epochs=EPOCHS,
        batch_size=128,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    ).fit(model, train_data)
    energies[name] = test_energies(model)
    results[name] = summary(*energies[name])

# ---- energy histograms of matching and non-matching test pairs, one panel per loss -------------
fig, axes = plt.subplots(2, 2, figsize=(10, 7.4), sharex=True, sharey=True, layout="constrained")
all_energies = torch.cat([torch.cat(e) for e in energies.values()]).clamp(min=1e-6)
bins = torch.logspace(all_energies.min().log10(), all_energies.max().log10(), 60).numpy()
for ax, (name, (p, n)) in zip(axes.flat, energies.items()):
    ax.hist(p.numpy(), bins=bins, alpha=0.6, label="matching pairs (same digit)")
    ax.hist(n.numpy(), bins=bins, alpha=0.6, label="non-matching pairs")
    r = results[name]
    ax.set_title(f"{name}: mean {r['matching']:.2g} vs {r['non_matching']:.2g}")
    if name == "contrastive":  # pushes non-matching pairs beyond the margin (hinge: n − p > m)
        ax.axvline(MARGIN, color="k", lw=0.8, ls="--", label=f"margin m = {MARGIN:g}")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xscale("log")
for ax in axes[1]:
    ax.set_xlabel("energy = embedding distance (log scale)")
for ax in axes[:, 0]:
    ax.set_ylabel(f"test pairs (of {len(p)})")
axes[0, 0].legend(loc="upper left", fontsize=8)
fig.suptitle(
    "Siamese energy on digit pairs, held-out pairs: the energy loss collapses both\n"
    "distributions towards 0, the margin losses keep them apart"
)
save_figure(fig, args.out, "siamese_collapse")

write_results(args.out, "siamese_collapse", {**results, "margin": MARGIN, "epochs": EPOCHS})
print_table(
    f"Siamese energy on test pairs after {EPOCHS} epochs (margin {MARGIN})",
    {
        name: {
            "matching": r["matching"],
            "non-matching": r["non_matching"],
            "gap": r["gap"],
            "AUC": r["auc"],
        }
        for name, r in results.items()
    },
    header="loss",
)
