"""GAN losses: pure functions on discriminator outputs, in numerically stable softplus forms.

Sign conventions. A *logit* d(y) is high for samples the discriminator believes real:
D(y) = sigmoid(d(y)). The energy view is E(y) = −d(y), low = real-looking. EBGAN's discriminator
is an autoencoder whose reconstruction error is an energy directly (low = real).

real, fake: (B,) logits (or energies for EBGAN) of a real and a generated batch. Every loss is a
0-dim tensor to be minimised, averaged over the batch. log D = −softplus(−d) and
log(1 − D) = −softplus(d) never overflow, even at |d| = 1e4.

Reference: Goodfellow et al. 2014 (minimax, non-saturating), Gulrajani et al. 2017 (WGAN-GP),
Lim & Ye 2017 / Miyato et al. 2018 (hinge), Zhao et al. 2017 (EBGAN).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ebm._checks import check_positive

__all__ = [
    "bce_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "ebgan_discriminator_loss",
    "ebgan_generator_loss",
    "gradient_penalty",
    "r1_penalty",
]


def bce_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Binary cross-entropy of the discriminator over the pooled real and fake batch.

    ½·(E[−log D(x)] + E[−log(1 − D(G(z)))]) = ½·(E softplus(−d_real) + E softplus(d_fake)).
    At the equilibrium D = ½ everywhere this is ln 2; Goodfellow's −V(D, G) is twice it.
    Shared by the minimax and the non-saturating game.
    """
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


def minimax_generator_loss(fake: Tensor) -> Tensor:
    """The original game: the generator minimises E log(1 − D(G(z))) = −E softplus(d_fake).

    Its gradient vanishes when the discriminator confidently rejects the fakes (d_fake ≪ 0).
    fake: (B,) discriminator logits on generated samples. Returns a 0-d loss.
    """
    return -F.softplus(fake).mean()


def nonsaturating_generator_loss(fake: Tensor) -> Tensor:
    """The non-saturating heuristic: minimise −E log D(G(z)) = E softplus(−d_fake).

    fake: (B,) discriminator logits on generated samples. Returns a 0-d loss.
    """
    return F.softplus(-fake).mean()


def wasserstein_critic_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The WGAN critic minimises E d(G(z)) − E d(x) (add ``gradient_penalty`` for WGAN-GP).

    real: (B,) critic outputs on data; fake: (B,) on generated samples. Returns a 0-d loss.
    """
    return fake.mean() - real.mean()


def wasserstein_generator_loss(fake: Tensor) -> Tensor:
    """The WGAN generator minimises −E d(G(z)). fake: (B,) critic outputs on generated samples."""
    return -fake.mean()


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E max(0, 1 − d(x)) + E max(0, 1 + d(G(z))).

    real: (B,) discriminator logits on data; fake: (B,) logits on generated samples. Returns a 0-d loss.
    """
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_generator_loss(fake: Tensor) -> Tensor:
    """The hinge generator minimises −E d(G(z)), as in WGAN. fake: (B,) logits on generated samples."""
    return -fake.mean()


def ebgan_discriminator_loss(real_energy: Tensor, fake_energy: Tensor, margin: float) -> Tensor:
    """EBGAN's margin loss on energies: E E(x) + E max(0, m − E(G(z))).

    Pushes data energies down and fake energies up until they exceed the margin m (finite, > 0).
    real_energy: (B,) energies of data; fake_energy: (B,) of generated samples (low = real).
    """
    check_positive("margin", margin)  # a Python number: no host sync
    return real_energy.mean() + F.relu(margin - fake_energy).mean()


def ebgan_generator_loss(fake_energy: Tensor) -> Tensor:
    """The EBGAN generator minimises the energy of its samples, E E(G(z)).

    fake_energy: (B,) energies of generated samples. Returns a 0-d loss.
    """
    return fake_energy.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP's penalty E (‖∇ d(ŷ)‖₂ − 1)², ŷ = ε·x + (1 − ε)·G(z), one ε ~ U(0, 1) per sample.

    real, fake: (B, ...) samples; critic maps (B, ...) -> (B,) scores. The gradient norm is taken
    per sample over all its flattened features. eps: optional (B,) interpolation weights (tests);
    otherwise drawn from ``generator`` (a torch.Generator on real's device; None: torch's global
    RNG).
    The graph is kept (create_graph) so the penalty trains the critic.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if eps is not None and tuple(eps.shape) != (real.shape[0],):
        raise ValueError(
            f"eps must have shape ({real.shape[0]},), one weight per sample, got {tuple(eps.shape)}"
        )
    if eps is None:
        eps = torch.rand(real.shape[0], generator=generator, device=real.device, dtype=real.dtype)
    eps = eps.reshape(-1, *([1] * (real.ndim - 1)))
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """Mescheder et al.'s (2018) zero-centred R1 penalty E_x ‖∇ₓ d(x)‖² on real data.

    real: (B, ...) data; critic maps (B, ...) -> (B,) logits. The squared norm is per sample over
    all flattened features. Added to the discriminator loss as (γ/2)·R1, it damps the
    discriminator's oscillation around the data, so the game converges locally (on Gaussian
    mixtures too). The graph is kept (create_graph) so the penalty trains the critic.
    """
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
