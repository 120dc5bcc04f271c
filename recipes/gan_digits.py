"""A GAN on scikit-learn's 8×8 digits: a sample grid and its Fréchet distance on the features of
the repository's digit classifier (``ebm.metrics.frechet_classifier_distance``).

The non-saturating loss with the R1 penalty and both learning rates annealed to 0 over the run:
the setting that covers every mode of the 2-D toys in ``gan_toy``. For scale, the same distance is
reported between the training and the test images (the floor a perfect generator would reach at
this sample size) and between uniform noise and the test images.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebm.data import digits
from ebm.energies import mlp
from ebm.metrics import frechet_classifier_distance
from ebm.models import GAN
from ebm.plot import image_grid
from ebm.recipe import parse_args, save_figure, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument(
        "--loss", default="nonsaturating", help="a GAN loss from ebm.models.gan.LOSSES"
    )


args = parse_args(__doc__, add_arguments=add_arguments)
torch.manual_seed(args.seed)  # module initialisation; the Trainer seeds the rest

# ---- data --------------------------------------------------------------------------------------
(train_x, _), (test_x, _) = digits("train"), digits("test")

# ---- the GAN: MLP generator with a sigmoid (pixels in [0, 1]) and MLP discriminator ------------
LATENT = 32
generator = nn.Sequential(
    mlp([LATENT, 256, 256, 64], nn.LeakyReLU), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8))
)
discriminator = nn.Sequential(nn.Flatten(), mlp([64, 256, 256, 1], nn.LeakyReLU))
epochs = 15 if args.quick else 300
steps = epochs * -(-len(train_x) // 64)  # optimiser steps of the whole run, batch 64
# R1 (γ = 1) keeps the discriminator smooth on the data, so the generator spreads over every digit
# instead of collapsing onto a few strokes; annealing lets the game settle at the end
gan = GAN(
    generator,
    discriminator,
    LATENT,
    loss=args.loss,
    lr=1e-3,
    r1_weight=1.0 if args.loss in ("minimax", "nonsaturating") else 0.0,
    decay_steps=steps,
)
trainer = Trainer(
    max_epochs=epochs, batch_size=64, device=args.device, seed=args.seed, progress=False
)
trainer.fit(gan, train_x)

# ---- samples and their Fréchet distance --------------------------------------------------------
g = torch.Generator(device=trainer.device).manual_seed(args.seed)
n = len(test_x)  # equal sample sizes: the Fréchet distance is biased by the sample size
samples = gan.sample(n, generator=g).cpu()
fd_gan = frechet_classifier_distance(samples, test_x).item()
fd_floor = frechet_classifier_distance(train_x[:n], test_x).item()
fd_noise = frechet_classifier_distance(
    torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)), test_x
).item()

fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
image_grid(axes[0], test_x[:64], nrow=8, title="test digits")
image_grid(axes[1], samples[:64], nrow=8, title=f"GAN samples: Fréchet distance {fd_gan:.1f}")
fig.suptitle(
    f"Fréchet distance (classifier features): train vs test {fd_floor:.1f}, noise {fd_noise:.0f}"
)
save_figure(fig, args.out, "gan_digits")

write_results(
    args.out,
    "gan_digits",
    {
        "epochs": epochs,
        "loss": args.loss,
        "lr": gan.lr,
        "r1_weight": gan.r1_weight,
        "annealed_steps": steps,
        "n_samples": n,
        "frechet_gan_vs_test": fd_gan,
        "frechet_train_vs_test": fd_floor,
        "frechet_noise_vs_test": fd_noise,
        "d_loss_last_epoch": trainer.history[-1]["d_loss"],
        "device": str(trainer.device),
    },
)
print(
    f"Fréchet distance: GAN {fd_gan:.2f}, train-vs-test floor {fd_floor:.2f}, noise {fd_noise:.1f}"
)
