"""Generative adversarial networks, trained through the shared Trainer with manual optimisation.

A generator G maps z ~ N(0, I) to samples; a discriminator scores samples. The discriminator is
also an energy: E(y) = −d(y) for the classifier losses (low = real-looking), and the
reconstruction error ‖AE(y) − y‖² for EBGAN, whose discriminator is an autoencoder.

Training: every ``training_step`` updates the discriminator once on a fresh real batch; every
``n_critic``-th call also updates the generator, so there are n_critic discriminator steps per
generator step, each with its own real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_module_input,
    check_betas,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    module_dtype,
)
from ebm._deprecation import renamed_arguments
from ebm.models import gan_losses as L
from ebm.models._batch import batch_data

__all__ = ["GAN", "BernoulliGenerator", "LOSSES", "R1_LOSSES"]


@dataclass(frozen=True)
class _Game:
    """One GAN objective: losses on logits (d: high = real) and what the discriminator outputs."""

    discriminator: object  # (real_logits, fake_logits) -> loss
    generator: object  # (fake_logits) -> loss
    gradient_penalty: bool = False
    autoencoder: bool = False  # the discriminator reconstructs its input (EBGAN)


def _ebgan_d(real: Tensor, fake: Tensor, margin: float) -> Tensor:
    return L.ebgan_discriminator_loss(-real, -fake, margin)


def _ebgan_g(fake: Tensor) -> Tensor:
    return L.ebgan_generator_loss(-fake)


_GAMES = {
    "minimax": _Game(L.bce_discriminator_loss, L.minimax_generator_loss),
    "nonsaturating": _Game(L.bce_discriminator_loss, L.nonsaturating_generator_loss),
    "wgan-gp": _Game(
        L.wasserstein_critic_loss, L.wasserstein_generator_loss, gradient_penalty=True
    ),
    "hinge": _Game(L.hinge_discriminator_loss, L.hinge_generator_loss),
    "ebgan": _Game(_ebgan_d, _ebgan_g, autoencoder=True),
}
LOSSES = tuple(_GAMES)
R1_LOSSES = ("minimax", "nonsaturating")  # the losses the R1 penalty (r1_weight) applies to


class GAN(nn.Module):
    """A GAN of ``generator`` G: (B, latent_dim) -> (B, ...) samples and ``discriminator`` D:
    (B, ...) -> (B,) or (B, 1) logits (high = real-looking), or for ``loss="ebgan"`` an
    autoencoder (B, ...) -> (B, ...). Its energy E(y) = −d(y) (EBGAN: the reconstruction error)
    is low on real-looking samples.

    Two meanings of "generator": the constructor's ``generator`` is the network G (an
    ``nn.Module``, kept as ``self.generator``); the ``generator`` argument of ``sample`` and
    ``discriminator_loss`` is a ``torch.Generator``, the source of random numbers, as everywhere
    in ``ebm``.

    latent_dim: the dimension of z ~ N(0, I) (an int >= 1).
    loss: one of ``LOSSES``. n_critic: discriminator steps per generator step. lr, lr_d: Adam
    learning rates of G and D (lr_d defaults to lr); betas: Adam betas of both. gp_weight: the
    WGAN-GP penalty weight λ. margin: EBGAN's margin m on the reconstruction energy.
    r1_weight: γ of the zero-centred R1 penalty (γ/2)·E‖∇ₓd(x)‖² on real data (Mescheder et al.
    2018), added to the discriminator loss of the minimax and nonsaturating losses (0 = off).
    pack: PacGAN's packing degree m (Lin et al. 2018): the discriminator judges m samples at once,
    concatenated along the features, so its input is (B/m, m·features) and a generator that
    collapses onto few modes is easy to spot. Batches must be multiples of m; ``energy`` and
    ``logits`` then score packs of m consecutive samples: (B, ...) -> (B/m,).
    lr_decay_steps: if set, both learning rates decay linearly to 0 over that many training steps
    (Trainer updates), so the stochastic game settles instead of jittering around its equilibrium
    (``decay_steps`` before 0.2: still accepted until 0.3, with a DeprecationWarning).
    Every hyper-parameter is validated here, by name. Data passed to ``energy``, ``logits`` and
    ``training_step`` is cast to the discriminator's parameter dtype (no values are read).
    """

    manual_optimization = True

    @renamed_arguments(decay_steps="lr_decay_steps")
    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        loss: str = "nonsaturating",
        n_critic: int = 1,
        lr: float = 2e-4,
        lr_d: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        gp_weight: float = 10.0,
        margin: float = 1.0,
        r1_weight: float = 0.0,
        pack: int = 1,
        lr_decay_steps: int | None = None,
    ):
        super().__init__()
        for name, module in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(module, nn.Module):
                raise ValueError(f"{name} must be an nn.Module, got {type(module).__name__}")
        check_int("latent_dim", latent_dim, minimum=1)
        check_int("n_critic", n_critic, minimum=1)
        check_choice("loss", loss, LOSSES)
        check_positive("lr", lr), check_positive("gp_weight", gp_weight)
        check_positive("margin", margin)
        if lr_d is not None:
            check_positive("lr_d", lr_d)
        betas = check_betas("betas", betas)
        check_int("pack", pack, minimum=1)
        check_real("r1_weight", r1_weight, 0.0)
        if r1_weight > 0 and loss not in R1_LOSSES:
            raise ValueError(f"r1_weight applies to the losses {R1_LOSSES}, got loss={loss!r}")
        if lr_decay_steps is not None:
            check_int("lr_decay_steps", lr_decay_steps, minimum=1)
        if pack > 1 and loss == "ebgan":
            raise ValueError("pack > 1 needs a classifier discriminator, not loss='ebgan'")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.loss, self.n_critic = latent_dim, loss, n_critic
        self.lr, self.lr_d, self.betas = lr, lr if lr_d is None else lr_d, tuple(betas)
        self.gp_weight, self.margin = gp_weight, margin
        self.r1_weight, self.pack = float(r1_weight), pack
        self.lr_decay_steps = lr_decay_steps
        game = _GAMES[loss]
        self._game = game
        self._d_loss = (
            partial(game.discriminator, margin=margin) if game.autoencoder else game.discriminator
        )
        self._calls = 0  # training_step calls so far: decides when the generator steps
        self._optimizers: list[torch.optim.Optimizer] = []  # kept for the decay schedule
        self._last_g_loss: Tensor | None = None

    # ---- the discriminator as an energy ---------------------------------------------------

    def _packed(self, y: Tensor) -> Tensor:
        """(B, ...) -> (B/m, m·features): m consecutive samples side by side (PacGAN)."""
        if self.pack == 1:
            return y
        if y.shape[0] % self.pack:
            raise ValueError(
                f"with pack={self.pack} the batch size must be a multiple of {self.pack}, "
                f"got {y.shape[0]}"
            )
        return y.reshape(y.shape[0] // self.pack, -1)

    def _data(self, y: object, name: str = "y") -> Tensor:
        """y as a tensor in the discriminator's dtype (array-likes and integers too; no sync);
        ``name``: the user's argument, for the error messages."""
        return as_float_tensor(name, y, finite=False, dtype=module_dtype(self.discriminator))

    def energy(self, y: Tensor) -> Tensor:
        """E(y): (B, ...) -> (B,), low = real-looking: −logit, or EBGAN's mean squared
        reconstruction error per sample. With ``pack`` = m > 1: (B, ...) -> (B/m,), one energy
        per pack of m consecutive samples. y is cast to the discriminator's parameter dtype."""
        return self._input_energy(self._packed(self._data(y)))

    def _input_energy(self, y: Tensor) -> Tensor:
        """Energy of the discriminator's own (packed) inputs, (B', ...) -> (B',)."""
        out = self.discriminator(y)
        if self._game.autoencoder:
            if out.shape != y.shape:
                raise ValueError(
                    f"an EBGAN discriminator must reconstruct its input: got output "
                    f"{tuple(out.shape)} for input {tuple(y.shape)}"
                )
            return (out - y).pow(2).flatten(1).mean(1)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out.squeeze(1)
        if out.shape != (y.shape[0],):
            raise ValueError(
                f"the discriminator must return (B,) or (B, 1) logits, got {tuple(out.shape)} "
                f"for a batch of {y.shape[0]}"
            )
        return -out

    def _input_logits(self, y: Tensor) -> Tensor:
        return -self._input_energy(y)

    def logits(self, y: Tensor) -> Tensor:
        """Discriminator scores d(y) = −E(y), (B,): high = real-looking."""
        return -self.energy(y)

    # ---- sampling ---------------------------------------------------------------------------

    def _latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        param = next(self.generator.parameters())
        return torch.randn(
            n, self.latent_dim, generator=generator, device=param.device, dtype=param.dtype
        )

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n generated samples G(z), z ~ N(0, I): (n, ...).

        n: an int >= 1. generator: the source of z (None: torch's global RNG), on the
        generator network's device.

        >>> import torch
        >>> from torch import nn
        >>> gan = GAN(nn.Linear(2, 3), nn.Linear(3, 1), latent_dim=2)
        >>> gan.sample(4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3])
        """
        check_int("n", n, minimum=1)
        check_generator("generator", generator)
        return self.generator(self._latents(n, generator))

    # ---- losses -----------------------------------------------------------------------------

    def discriminator_loss(
        self, real: Tensor, fake: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The discriminator's loss on a real and a generated batch (0-dim terms, minimised).

        real, fake: (B, ...) samples (B a multiple of ``pack``), cast to the discriminator's
        dtype. generator: the source of WGAN-GP's interpolation weights (None: torch's global
        RNG; other losses draw nothing). Returns {"loss", "d_adv"} plus "gp" (WGAN-GP: loss =
        d_adv + gp_weight·gp) or "r1" (r1_weight > 0: loss = d_adv + r1_weight/2·r1).
        """
        check_generator("generator", generator)
        adv = self._d_loss(self.logits(real), self.logits(fake))
        if self._game.gradient_penalty:
            # packs are the critic's samples: interpolate and take gradient norms per pack
            real, fake = self._data(real), self._data(fake)
            gp = L.gradient_penalty(
                self._input_logits, self._packed(real), self._packed(fake), generator=generator
            )
            return {"loss": adv + self.gp_weight * gp, "d_adv": adv, "gp": gp}
        if self.r1_weight > 0:
            r1 = L.r1_penalty(self._input_logits, self._packed(self._data(real)))
            return {"loss": adv + 0.5 * self.r1_weight * r1, "d_adv": adv, "r1": r1}
        return {"loss": adv, "d_adv": adv}

    def generator_loss(self, fake: Tensor) -> Tensor:
        """The generator's loss (0-dim, minimised) on generated samples fake (B, ...) = G(z),
        for the chosen ``loss`` (e.g. non-saturating: E softplus(−d(G(z))))."""
        return self._game.generator(self.logits(fake))

    # ---- the Trainer contract ---------------------------------------------------------------

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """[generator Adam (index 0), discriminator Adam (index 1)]."""
        self._optimizers = [
            torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas),
        ]
        return self._optimizers

    def _decay(self, step: int) -> float:
        return max(0.0, 1.0 - step / self.lr_decay_steps)

    def _anneal(self) -> None:
        """Set both learning rates for the next step (python floats: no device sync)."""
        factor = self._decay(self._calls)
        for opt, base in zip(self._optimizers, (self.lr, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def training_step(self, batch, optimize) -> dict[str, Tensor]:
        """One discriminator step; a generator step every ``n_critic``-th call.

        batch: real samples (B, ...) shaped like the generator's outputs (a tensor or array-like,
        cast to the discriminator's dtype; a ValueError names ``batch`` otherwise), or [samples,
        labels, ...]. optimize: the Trainer's
        callback ``optimize(loss, index)`` (index 1 the discriminator's optimizer, 0 the
        generator's). Latents come from torch's global RNG. Returns the discriminator's terms
        (``discriminator_loss``) plus "d_loss" and, after the first generator step, "g_loss".
        """
        real = self._data(batch_data(batch), "batch")
        with torch.no_grad():
            fake = self.generator(self._latents(real.shape[0] if real.ndim else 1))
        if real.shape[1:] != fake.shape[1:] or real.ndim == 0:  # shapes only: no sync
            raise ValueError(
                f"batch must hold real samples shaped like the generator's outputs, (B, "
                f"{', '.join(map(str, fake.shape[1:]))}), got {tuple(real.shape)}"
            )
        d_terms = self.discriminator_loss(real, fake)
        optimize(d_terms["loss"], 1)
        self._calls += 1
        if self._calls % self.n_critic == 0:
            # freeze D so the generator's backward leaves no stale gradients on it
            self.discriminator.requires_grad_(False)
            try:
                g_loss = self.generator_loss(self.generator(self._latents(real.shape[0])))
                optimize(g_loss, 0)
            finally:
                self.discriminator.requires_grad_(True)
            self._last_g_loss = g_loss.detach()
        metrics = {name: t.detach() for name, t in d_terms.items()}
        metrics["d_loss"] = metrics["loss"]
        if self.lr_decay_steps is not None and self._optimizers:
            self._anneal()
        if self._last_g_loss is not None:  # absent until the first generator step
            metrics["g_loss"] = self._last_g_loss
        return metrics

    def get_extra_state(self) -> dict:
        """{"calls": training steps so far}: saved in ``state_dict`` so that a resumed fit keeps
        the n_critic rhythm and the learning-rate decay."""
        return {"calls": self._calls}

    def set_extra_state(self, state: dict) -> None:
        """Restore the step count from ``state``, a dict made by ``get_extra_state``."""
        self._calls = int(state["calls"])


class BernoulliGenerator(nn.Module):
    """A generator of exact binary data: (B, features) latents -> (B, features) values in {0, 1}.

    Each feature is 1 with a learnt probability p = σ(logit), drawn from its latent as
    1[Φ(z) < p] (Φ the standard normal CDF, so Φ(z) ~ U(0, 1) and a seeded latent gives a
    reproducible sample). The output is the hard 0/1 draw in the forward pass with the
    straight-through gradient ∂out/∂p = 1 (Bengio et al. 2013): the discriminator sees the same
    kind of values as the data, so at the equilibrium p = p_data it cannot tell them apart.
    """

    def __init__(self, features: int = 1, p: float = 0.5):
        super().__init__()
        check_int("features", features, minimum=1)
        check_real("p", p, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.logit = nn.Parameter(torch.full((features,), float(torch.logit(torch.tensor(p)))))

    @property
    def probability(self) -> Tensor:
        """p = σ(logit): (features,)."""
        return torch.sigmoid(self.logit)

    def forward(self, z: Tensor) -> Tensor:
        """z: (B, features) latents -> (B, features) draws in {0, 1}.

        z may be an array-like; integers and bools are promoted, floating values cast to the
        parameters' dtype. A forward pass: no value checks, no host sync; a NaN latent gives a NaN
        draw (not a believable 0), ±inf the limits Φ = 1 (a 0) and Φ = 0 (a 1).
        """
        z = as_module_input("z", z, self)
        if z.ndim != 2 or z.shape[1] != self.logit.shape[0]:
            raise ValueError(f"z must be (B, {self.logit.shape[0]}) latents, got {tuple(z.shape)}")
        p = self.probability.to(z.dtype).expand_as(z)
        hard = (torch.special.ndtr(z) < p).to(z.dtype)
        hard = torch.where(z.isnan(), z, hard)  # NaN < p is False: keep the NaN instead
        return hard + (p - p.detach())  # exactly 0 or 1 in the forward pass
