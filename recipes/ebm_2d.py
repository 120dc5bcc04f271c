"""An MLP energy trained by persistent contrastive divergence on four 2-D toys.

Each step pushes the energy down on a data batch and up on negatives: Langevin chains that start
from a replay buffer of earlier chains (5 % re-drawn from uniform noise). The chains run colder
than p ∝ exp(−E) (noise_scale below √(2·step), common EBM practice), so the landscape's minima,
not its exact depth, are what to look at. The figure shows the data, the learned energy (colours
clipped just above the data's energies) and samples: Langevin chains from fresh noise. MMD (RBF,
median bandwidth) compares them with fresh data; 0 means indistinguishable.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebm.data import checkerboard, pinwheel, ring_of_gaussians, two_moons
from ebm.energies import MLPEnergy
from ebm.metrics import mmd
from ebm.models import EBM
from ebm.plot import energy_landscape
from ebm.recipe import parse_args, save_figure, write_results
from ebm.train import Trainer

args = parse_args(__doc__)
DATASETS = {
    "ring-8": (lambda n, seed: ring_of_gaussians(n, std=0.1, seed=seed), 3.0),
    "two moons": (lambda n, seed: two_moons(n, noise=0.05, seed=seed), 2.5),
    "pinwheel": (lambda n, seed: pinwheel(n, seed=seed), 4.0),
    "checkerboard": (lambda n, seed: checkerboard(n, seed=seed), 4.5),
}
steps = 80 if args.quick else 2000
n_eval = 300 if args.quick else 2000

fig, axes = plt.subplots(3, len(DATASETS), figsize=(4 * len(DATASETS), 11), squeeze=False)
results = {}
for col, (name, (make_data, lim)) in enumerate(DATASETS.items()):
    torch.manual_seed(args.seed)
    data = make_data(5000, args.seed)
    model = EBM(
        MLPEnergy(2, hidden=(128, 128), activation=nn.ReLU),
        data_shape=(2,),
        n_steps=20,
        step_size=0.01,
        noise_scale=0.01,
        buffer_size=5000,
        init_scale=lim,
        alpha=0.1,
        lr=1e-3,
        seed=args.seed,
    )
    trainer = Trainer(
        max_epochs=None,
        max_steps=steps,
        batch_size=128,
        device=args.device,
        seed=args.seed,
        progress=False,
        log_every_n_steps=None,
    )
    trainer.fit(model, data)
    model.eval()
    samples = model.sample(n_eval, n_steps=200).cpu()
    fresh = make_data(n_eval, args.seed + 1)
    results[name] = {
        "mmd_langevin_vs_data": float(mmd(samples, fresh)),
        "mmd_data_vs_data": float(mmd(make_data(n_eval, args.seed + 2), fresh)),
        "final_loss": trainer.history[-1]["loss"],
    }
    print(name, results[name], flush=True)

    box = (-lim, lim)
    axes[0, col].scatter(data[::3, 0], data[::3, 1], s=1, alpha=0.5)
    axes[0, col].set_title(f"{name}: data")
    # colours clipped a little above the data's energies, so the basins, not the far walls, show
    with torch.no_grad():
        cap = float(model.energy(data.to(trainer.device)).quantile(0.99)) + 1.0
    energy_landscape(
        axes[1, col],
        lambda y, model=model, cap=cap: model.energy(y).clamp(max=cap),
        box,
        box,
        n=150,
        title="learned energy (clipped): low = dark",
    )
    axes[2, col].scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.5, c="C1")
    axes[2, col].set_title(f"Langevin samples, MMD {results[name]['mmd_langevin_vs_data']:.4f}")
    for ax in (axes[0, col], axes[2, col]):
        ax.set_xlim(*box)
        ax.set_ylim(*box)
    for ax in axes[:, col]:
        ax.set_aspect("equal")
fig.tight_layout()
save_figure(fig, args.out, "ebm_2d")
write_results(args.out, "ebm_2d", {"steps": steps, "datasets": results})
