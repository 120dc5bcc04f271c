"""VAE on handwritten digits (notes ch. 34 and 41): samples, interpolation, reconstructions, and
the 2-D latent layout with and without the KL term (figure 34.3).

Default data: scikit-learn's 8×8 digits (offline). ``--data-dir`` pointing at the MNIST IDX files
runs the notes' exact configuration: d = 20, encoder 784 → 400 → ReLU → 40, decoder
20 → 400 → ReLU → 784 → sigmoid, Adam 1e-3, batch 256, 11 epochs, and reports the test loss
(negative ELBO) per sample. Both report the Fréchet distance of the samples to the test images on
the features of the repository's digit classifier. The KL carries its ½ (the ch. 34 formula drops
it; ch. 41 has it).
"""

import matplotlib.pyplot as plt
import torch
from matplotlib.collections import EllipseCollection

from ebm.data import digits, mnist
from ebm.metrics import frechet_classifier_distance
from ebm.metrics.frechet import digit_classifier
from ebm.models import VAE
from ebm.models.vae import mlp_decoder, mlp_encoder
from ebm.plot import image_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
torch.manual_seed(args.seed)  # module initialisation; the Trainer seeds the rest

# ---- data --------------------------------------------------------------------------------------
if args.data_dir:  # the notes' MNIST configuration
    (train_x, train_y), (test_x, test_y) = mnist(args.data_dir), mnist(args.data_dir, train=False)
    shape, d, hidden, epochs, batch = (1, 28, 28), 20, (400,), 11, 256
    if args.quick:
        train_x, train_y, epochs = train_x[:2048], train_y[:2048], 1
else:
    (train_x, train_y), (test_x, test_y) = digits("train"), digits("test")
    shape, d, hidden, epochs, batch = (1, 8, 8), 8, (256,), 60, 64
    epochs = 12 if args.quick else epochs

PAIRS = [(0, 1), (4, 7), (6, 9), (2, 3)]  # interpolation end points: digit labels

# ---- the VAE -----------------------------------------------------------------------------------
vae = VAE(mlp_encoder(shape, d, hidden), mlp_decoder(shape, d, hidden), d, lr=1e-3)
trainer = Trainer(
    max_epochs=epochs,
    batch_size=batch,
    device=args.device,
    precision=args.precision,
    seed=args.seed,
    progress=False,
)
trainer.fit(vae, train_x)
dev = trainer.device
test = test_x.to(dev)
g = torch.Generator(device=dev).manual_seed(args.seed)
with torch.no_grad():
    test_nelbo = vae.energy(test, generator=g).mean().item()
    test_iwae = vae.log_likelihood(test[:500], n_samples=64 if not args.quick else 8, generator=g)
    samples = vae.sample(16, generator=g)
    # interpolations between clearly different digits: the first test image of each label
    first = {label: int((test_y == label).nonzero()[0]) for label in test_y.unique().tolist()}
    pairs = [(a, b) for a, b in PAIRS if a in first and b in first]
    path = torch.stack([vae.interpolate(test[first[a]], test[first[b]], steps=8) for a, b in pairs])
    recon = vae.reconstruct(test[:8])
    # the accuracy of the classifier whose features the Fréchet distances below use
    classifier = digit_classifier("mnist" if args.data_dir else "digits", args.data_dir)
    classifier_accuracy = (
        torch.cat([classifier(b.float().cpu()).argmax(1) for b in test_x.split(1024)])
        .eq(test_y)
        .float()
        .mean()
        .item()
    )

# ---- Fréchet distance of the samples on the repository classifier's features -------------------
n_fd = min(len(test_x), len(train_x))  # equal sample sizes: the distance is biased by the size
with torch.no_grad():
    fd_samples = vae.sample(n_fd, generator=g).cpu()
fd_vae = frechet_classifier_distance(fd_samples, test_x[:n_fd], mnist_root=args.data_dir).item()
fd_floor = frechet_classifier_distance(
    train_x[:n_fd], test_x[:n_fd], mnist_root=args.data_dir
).item()

# ---- figure 34.3: a 2-D latent space with and without the KL term ------------------------------
layouts = {}
for beta in (0.0, 1.0):
    torch.manual_seed(args.seed)
    vae2 = VAE(mlp_encoder(shape, 2, hidden), mlp_decoder(shape, 2, hidden), 2, beta=beta)
    Trainer(
        max_epochs=epochs,
        batch_size=batch,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        progress=False,
    ).fit(vae2, train_x)
    with torch.no_grad():
        mu, logvar = vae2.encode(test[:2000])
        layouts[beta] = (mu.cpu(), (0.5 * logvar).exp().cpu())  # means and σ, (N, 2) each

# ---- plots -------------------------------------------------------------------------------------
fig = plt.figure(figsize=(10, 7.2), layout="constrained")
grid = fig.add_gridspec(2, 2, width_ratios=[1, 2], height_ratios=[2, 1.15])
image_grid(fig.add_subplot(grid[0, 0]), samples, nrow=4, title="samples, z ~ N(0, I)")
image_grid(
    fig.add_subplot(grid[0, 1]),
    path.flatten(0, 1),
    nrow=path.shape[1],
    title="interpolation of the posterior means, one row each:\n"
    + ", ".join(f"{a} → {b}" for a, b in pairs)
    + f" ({path.shape[1]} steps, first test image of each label)",
)
image_grid(
    fig.add_subplot(grid[1, :]),
    torch.cat([test[:8], recon]),
    nrow=8,
    title="test digits (top) / reconstructions (bottom)",
)
fig.suptitle(
    f"VAE on {'MNIST' if args.data_dir else '8×8 digits'}: test −ELBO {test_nelbo:.1f} nats"
)
save_figure(fig, args.out, "vae_digits")

# One frame for both panels, so the KL term's pull towards the origin shows; a 1σ ellipse of
# q(z|y) = N(μ, diag σ²) around every one of the first N_BUBBLES codes (the notes' "bubbles").
N_BUBBLES = 200
everything = torch.cat([mu for mu, _ in layouts.values()] + [torch.tensor([[-2.0, -2.0]])])
low, high = everything.min(0).values, everything.max(0).values
centre, half = (low + high) / 2, 0.53 * (high - low).max()  # a square frame around all codes
fig, axes = plt.subplots(1, 2, figsize=(10, 5.8), sharex=True, sharey=True, layout="constrained")
cmap = plt.get_cmap("tab10")
titles = ["(a) reconstruction only (β = 0)", "(b) with the KL term (β = 1)"]
for ax, (mu, sigma), title in zip(axes, layouts.values(), titles):
    kl = 0.5 * (sigma.square() + mu.square() - 1 - sigma.square().log()).sum(1).mean()
    title = (
        f"{title}\nmedian |μ| {mu.norm(dim=1).median():.2f}, median σ {sigma.median():.2g}\n"
        f"mean KL(q(z|y) ‖ N(0, I)) {kl:.3g} nats"
    )
    labels = test_y[: len(mu)]
    bubbles = EllipseCollection(
        2 * sigma[:N_BUBBLES, 0].numpy(),
        2 * sigma[:N_BUBBLES, 1].numpy(),
        0,
        units="xy",
        offsets=mu[:N_BUBBLES].numpy(),
        offset_transform=ax.transData,
        facecolors=cmap(labels[:N_BUBBLES].numpy()),
        alpha=0.15,
        edgecolors="none",
    )
    ax.add_collection(bubbles)
    points = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    circle = torch.linspace(0, 2 * torch.pi, 100)
    for r in (1, 2):
        ax.plot(r * circle.cos(), r * circle.sin(), "k--", lw=0.8)
    ax.set(title=title, xlabel="μ₁", ylabel="μ₂")
    ax.set_box_aspect(1)  # square limits in a square box: one unit is as long on both axes
    ax.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half))
axes[0].plot([], [], "k--", lw=0.8, label="prior N(0, I): 1σ and 2σ circles")
axes[0].legend(loc="best", fontsize=8)
fig.colorbar(points, ax=axes, ticks=range(10), label="digit", shrink=0.8)
fig.suptitle(
    f"Figure 34.3 on {'MNIST' if args.data_dir else '8×8 digits'}: 2-D codes μ of "
    f"{len(mu)} test images; shaded: 1σ of q(z|y) for the first {N_BUBBLES}"
)
save_figure(fig, args.out, "vae_digits_latent")
save_samples(
    args.out,
    "vae_digits",
    {
        "samples": samples,
        "interpolation": path,  # (pairs, steps, *shape), the pairs in the JSON
        "reconstructions": recon,
        "frechet_samples": fd_samples,
        "latent_mu_without_kl": layouts[0.0][0],
        "latent_sigma_without_kl": layouts[0.0][1],
        "latent_mu_with_kl": layouts[1.0][0],
        "latent_sigma_with_kl": layouts[1.0][1],
        "latent_labels": test_y[: len(layouts[0.0][0])],
    },
)

# The bubbles in numbers (notes figs. 34.2/34.5): each code's KL to the prior in closed form,
# KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_i (σ_i² + μ_i² − 1 − log σ_i²), and how often a bubble holds
# the mean of a code of another digit (Σ_i ((μ'_i − μ_i)/σ_i)² ≤ 1): the reconstruction term keeps
# the bubbles apart, the KL term pulls them to the prior's size and place.
bubbles = {}
for beta, (mu, sigma) in layouts.items():
    kl = 0.5 * (sigma.square() + mu.square() - 1 - sigma.square().log()).sum(1)
    labels = test_y[: len(mu)]
    inside = (((mu.unsqueeze(0) - mu.unsqueeze(1)) / sigma.unsqueeze(1)).square().sum(2) <= 1) & (
        labels.unsqueeze(0) != labels.unsqueeze(1)
    )
    bubbles[f"beta_{beta:g}"] = {
        "mean_norm_mu": mu.norm(dim=1).mean().item(),
        "mean_sigma": sigma.mean().item(),
        "mean_kl_to_prior": kl.mean().item(),
        "share_of_bubbles_holding_another_digits_code": inside.any(1).float().mean().item(),
    }
spread = {beta: mu.norm(dim=1).median().item() for beta, (mu, _) in layouts.items()}
sigma_median = {beta: sigma.median().item() for beta, (_, sigma) in layouts.items()}
write_results(
    args.out,
    "vae_digits",
    {
        "data": "mnist" if args.data_dir else "digits8x8",
        "latent_dim": d,
        "epochs": epochs,
        "test_neg_elbo_per_sample": test_nelbo,
        "test_iwae_log_likelihood": test_iwae.mean().item(),
        "frechet_samples_vs_test": fd_vae,
        "frechet_train_vs_test": fd_floor,
        "frechet_n": n_fd,
        "train_loss_last_epoch": trainer.history[-1]["loss"],
        "latent_median_norm_without_kl": spread[0.0],
        "latent_median_norm_with_kl": spread[1.0],
        "latent_median_sigma_without_kl": sigma_median[0.0],
        "latent_median_sigma_with_kl": sigma_median[1.0],
        "interpolation_pairs": pairs,
        "interpolation_test_indices": [[first[a], first[b]] for a, b in pairs],
        "classifier_test_accuracy": classifier_accuracy,
        "latent_bubbles": bubbles,
        "device": str(dev),
    },
)
print_table(
    f"VAE on {'MNIST' if args.data_dir else '8×8 digits'}, d = {d}, {epochs} epochs (test set)",
    {
        "−ELBO per sample (nats)": test_nelbo,
        "IWAE log p bound (nats)": test_iwae.mean().item(),
        "Fréchet distance, samples": fd_vae,
        "Fréchet distance, train images (floor)": fd_floor,
        "feature classifier's test accuracy": classifier_accuracy,
        "median ‖μ‖ without KL (β = 0)": spread[0.0],
        "median ‖μ‖ with KL (β = 1)": spread[1.0],
    },
)
print_table(
    f"2-D latent bubbles q(z|y) = N(μ, diag σ²) of {len(layouts[0.0][0])} test images",
    {
        f"β = {key[5:]}": {
            "mean ‖μ‖": b["mean_norm_mu"],
            "mean σ": b["mean_sigma"],
            "mean KL to N(0, I)": b["mean_kl_to_prior"],
            "holds another digit's μ": b["share_of_bubbles_holding_another_digits_code"],
        }
        for key, b in bubbles.items()
    },
    header="KL weight",
)
