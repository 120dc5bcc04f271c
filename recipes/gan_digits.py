"""A GAN on scikit-learn's 8×8 digits: a sample grid and its Fréchet distance on the features of
the repository's digit classifier (``ebm.metrics.frechet_classifier_distance``).

The non-saturating loss with the R1 penalty and both learning rates annealed to 0 over the run:
the setting that covers every mode of the 2-D toys in ``gan_toy``. For scale, the same distance is
reported between the training and the test images (the floor a perfect generator would reach at
this sample size) and between uniform noise and the test images. ``--data-dir`` pointing at the
MNIST IDX files trains a larger MLP GAN (latent 64, 64 → 256 → 512 → 784 / 784 → 512 → 256 → 1,
batch 128, 30 epochs) and measures it on the MNIST classifier's features.
"""

import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebm.data import digits, mnist
from ebm.energies import mlp
from ebm.metrics import frechet_classifier_distance
from ebm.models import GAN
from ebm.models.gan import R1_LOSSES
from ebm.plot import image_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument(
        "--loss", default="nonsaturating", help="a GAN loss from ebm.models.gan.LOSSES"
    )
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    # the ablations of the README: without R1, at another learning rate, without annealing
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (both nets)")
    parser.add_argument(
        "--r1-weight", type=float, default=None, help="R1's γ (default 1 where the loss takes it)"
    )
    parser.add_argument(
        "--no-anneal", action="store_true", help="constant learning rates (no decay to 0)"
    )
    parser.add_argument("--name", default="gan_digits", help="prefix of every output file")


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
torch.manual_seed(args.seed)  # module initialisation; the Trainer seeds the rest

# ---- data and sizes ----------------------------------------------------------------------------
# image shape, latent size, hidden widths of G and of D, batch size, epochs of the full run
SIZES = {
    "mnist": ((1, 28, 28), 64, [256, 512], [512, 256], 128, 30),
    "digits": ((1, 8, 8), 32, [256, 256], [256, 256], 64, 300),
}
shape, latent, g_hidden, d_hidden, batch, epochs = SIZES["mnist" if args.data_dir else "digits"]
if args.data_dir:
    (train_x, _), (test_x, _) = mnist(args.data_dir), mnist(args.data_dir, train=False)
    if args.quick:
        train_x, epochs = train_x[:2048], 1
else:
    (train_x, _), (test_x, _) = digits("train"), digits("test")
    if args.quick:
        epochs = 15
pixels = math.prod(shape)

# ---- the GAN: MLP generator with a sigmoid (pixels in [0, 1]) and MLP discriminator ------------
generator = nn.Sequential(
    mlp([latent, *g_hidden, pixels], nn.LeakyReLU), nn.Sigmoid(), nn.Unflatten(1, shape)
)
discriminator = nn.Sequential(nn.Flatten(), mlp([pixels, *d_hidden, 1], nn.LeakyReLU))
steps = epochs * -(-len(train_x) // batch)  # optimiser steps of the whole run
# R1 (γ = 1) keeps the discriminator smooth on the data, so the generator spreads over every digit
# instead of collapsing onto a few strokes; annealing lets the game settle at the end
r1_weight = args.r1_weight if args.r1_weight is not None else float(args.loss in R1_LOSSES)
gan = GAN(
    generator,
    discriminator,
    latent,
    loss=args.loss,
    lr=args.lr,
    r1_weight=r1_weight,
    lr_decay_steps=None if args.no_anneal else steps,
)
trainer = Trainer(
    max_epochs=epochs,
    batch_size=batch,
    device=args.device,
    precision=args.precision,
    seed=args.seed,
    progress=False,
)
trainer.fit(gan, train_x)

# ---- samples and their Fréchet distance --------------------------------------------------------
g = torch.Generator(device=trainer.device).manual_seed(args.seed)
n = min(len(test_x), len(train_x))  # equal sample sizes: the distance is biased by the size
test_x = test_x[:n]
samples = gan.sample(n, generator=g).cpu()
fd_gan = frechet_classifier_distance(samples, test_x, mnist_root=args.data_dir).item()
fd_floor = frechet_classifier_distance(train_x[:n], test_x, mnist_root=args.data_dir).item()
fd_noise = frechet_classifier_distance(
    torch.rand(n, *shape, generator=torch.Generator().manual_seed(0)),
    test_x,
    mnist_root=args.data_dir,
).item()

fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
image_grid(
    axes[0], test_x[:64], nrow=8, title=f"test digits ({'MNIST' if args.data_dir else '8×8'})"
)
image_grid(axes[1], samples[:64], nrow=8, title=f"GAN samples: Fréchet distance {fd_gan:.1f}")
fig.suptitle(
    f"Fréchet distance (classifier features): train vs test {fd_floor:.1f}, noise {fd_noise:.0f}\n"
    f"{args.loss} GAN, seed {args.seed}, Adam {args.lr:g}, R1 γ = {r1_weight:g}, "
    f"{'constant rates' if args.no_anneal else 'rates annealed to 0'}"
)
save_figure(fig, args.out, args.name)
save_samples(args.out, args.name, {"samples": samples})  # (n, 1, H, W), pixels in [0, 1]

write_results(
    args.out,
    args.name,
    {
        "data": "mnist" if args.data_dir else "digits8x8",
        "seed": args.seed,
        "epochs": epochs,
        "loss": args.loss,
        "lr": gan.lr,
        "r1_weight": gan.r1_weight,
        "annealed_steps": None if args.no_anneal else steps,
        "n_samples": n,
        "frechet_gan_vs_test": fd_gan,
        "frechet_train_vs_test": fd_floor,
        "frechet_noise_vs_test": fd_noise,
        "d_loss_last_epoch": trainer.history[-1]["d_loss"],
        "device": str(trainer.device),
    },
)
print_table(
    f"GAN on {'MNIST' if args.data_dir else '8×8 digits'}, {epochs} epochs, seed {args.seed}, "
    f"lr {args.lr:g}, R1 γ = {r1_weight:g}, {'constant' if args.no_anneal else 'annealed'} "
    "rates: Fréchet distance "
    f"to {n} test images (classifier features)",
    {"GAN samples": fd_gan, "train images (floor)": fd_floor, "uniform noise": fd_noise},
)
