"""The variational autoencoder (Kingma & Welling 2014) and its energy: the negative ELBO.

Encoder q(z|y) = N(μ(y), diag σ²(y)) outputs (μ, log σ²) as 2·latent_dim features; the decoder
gives p(y|z), Bernoulli (decoder outputs logits) or Gaussian with fixed σ (decoder outputs the
mean). The prior is p(z) = N(0, I).

    energy(y) = −ELBO(y) = E_q[−log p(y|z)] + β·KL(q(z|y) ‖ p(z))       (nats per sample, low = good)
    KL = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²)                            (the notes' ch. 34 drop the ½)

With β = 1, energy(y) ≥ −log p(y): the free energy. ``log_likelihood`` gives the tighter
importance-weighted bound (Burda et al. 2016).

Range check: a Bernoulli likelihood needs data in [0, 1]. ``energy``, ``log_likelihood``,
``reconstruct`` and ``interpolate`` check every call that the data is finite (and in range);
``training_step`` checks the first batch only, so the training loop has no host sync. Every
data-taking method accepts array-likes and casts the data to the model's parameter dtype
(float64 data into a float32 model is computed in float32; integers become floats).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    check_shape,
    module_dtype,
)
from ebm.energies import mlp
from ebm.models._batch import batch_data

LIKELIHOODS = ("bernoulli", "gaussian")

__all__ = [
    "VAE",
    "LIKELIHOODS",
    "gaussian_kl",
    "mlp_encoder",
    "mlp_decoder",
    "conv_encoder",
    "conv_decoder",
]


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − log σ²). mu, logvar: (B, d) -> (B,)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(1)


def _check_latent_dim(latent_dim: int) -> int:
    return check_int("latent_dim", latent_dim, minimum=1)


class VAE(nn.Module):
    """encoder: (B, *shape) -> (B, 2·latent_dim) = [μ, log σ²]; decoder: (B, latent_dim) ->
    (B, *shape) logits (Bernoulli) or means (Gaussian).

    latent_dim: the dimension d of z (an int >= 1).
    likelihood: p(y|z), "bernoulli" (data in [0, 1]; the decoder outputs logits) or "gaussian"
        (N(decoder(z), sigma² I); the decoder outputs means).
    beta: the KL weight (β-VAE, finite, >= 0); lr: Adam's learning rate (finite, > 0);
    sigma: the Gaussian decoder's fixed std (finite, > 0).
    If the encoder has an ``input_shape`` attribute (the builders below set it), inputs are
    checked against it. ``energy(y)`` is the negative ELBO: low = good.

    >>> import torch
    >>> vae = VAE(mlp_encoder((4,), 2, (8,)), mlp_decoder((4,), 2, (8,)), latent_dim=2)
    >>> vae.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 4])
    >>> vae.energy(torch.full((5, 4), 0.5)).shape  # nats per sample
    torch.Size([5])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        lr: float = 1e-3,
        sigma: float = 1.0,
    ):
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise ValueError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.latent_dim = _check_latent_dim(latent_dim)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        check_real("beta", beta, 0.0)
        self.beta, self.lr = float(beta), check_positive("lr", lr)
        self.sigma = check_positive("sigma", sigma)
        self.encoder, self.decoder = encoder, decoder
        self.input_shape = getattr(encoder, "input_shape", None)
        self._range_checked = False

    # ---- checks -----------------------------------------------------------------------------

    def _dtype(self) -> torch.dtype | None:
        return module_dtype(self.encoder) or module_dtype(self.decoder)

    def _check_input(self, y: object, finite: bool = False, name: str = "y") -> Tensor:
        """y as a tensor in the parameters' dtype, of the encoder's input shape; NaN/inf are
        refused when ``finite`` (one host sync: evaluation methods only, not training)."""
        y = as_float_tensor(name, y, finite=finite, dtype=self._dtype())
        if y.ndim < 1 or y.shape[0] < 1:
            raise ValueError(f"{name} must have shape (B, ...) with B >= 1, got {tuple(y.shape)}")
        if self.input_shape is not None and tuple(y.shape[1:]) != tuple(self.input_shape):
            raise ValueError(
                f"{name} must have shape (B, {', '.join(map(str, self.input_shape))}) for this "
                f"encoder, got {tuple(y.shape)}"
            )
        return y

    def _check_range(self, y: Tensor) -> None:
        # one host sync: called outside the training loop's hot path
        if self.likelihood == "bernoulli" and not bool(((y >= 0) & (y <= 1)).all()):
            raise ValueError(
                f"a Bernoulli likelihood needs data in [0, 1], got values in "
                f"[{float(y.min()):.3g}, {float(y.max()):.3g}]; rescale the data or use "
                f"likelihood='gaussian'"
            )

    # ---- the model --------------------------------------------------------------------------

    def encode(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|y): (μ, log σ²), each (B, latent_dim). y: (B, *shape), cast to the parameters'
        dtype; its values are not read (a forward pass: NaN propagates)."""
        out = self.encoder(self._check_input(y))
        if out.ndim != 2 or out.shape[1] != 2 * self.latent_dim:
            raise ValueError(
                f"the encoder must return (B, 2·latent_dim) = (B, {2 * self.latent_dim}) "
                f"features [μ, log σ²], got {tuple(out.shape)}"
            )
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """The mean of p(y|z): Bernoulli probabilities or Gaussian means, (B, *shape).
        z: (B, latent_dim), cast to the parameters' dtype."""
        z = as_float_tensor("z", z, ndim=2, finite=False, dtype=self._dtype())
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def _nll(self, y: Tensor, out: Tensor) -> Tensor:
        """−log p(y|z) per sample (B,), from the raw decoder output (logits or means)."""
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(out, y, reduction="none")
            return nll.flatten(1).sum(1)
        d = y[0].numel()
        sq = (y - out).pow(2).flatten(1).sum(1)
        return 0.5 * sq / self.sigma**2 + d * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))

    def _reparameterise(self, mu: Tensor, logvar: Tensor, generator=None) -> Tensor:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def elbo_terms(self, y: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One-sample estimates per sample: {"recon": (B,) E_q[−log p(y|z)], "kl": (B,)}.

        y: (B, *shape), cast to the parameters' dtype; its values are not read (no range check,
        NaN propagates: the training path). generator: the source of z's noise ε (None: torch's
        global RNG).
        """
        check_generator("generator", generator)
        y = self._check_input(y)
        mu, logvar = self.encode(y)
        z = self._reparameterise(mu, logvar, generator)
        return {"recon": self._nll(y, self.decoder(z)), "kl": gaussian_kl(mu, logvar)}

    def energy(
        self, y: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> Tensor:
        """The negative ELBO per sample, (B,) nats, averaged over ``n_samples`` (an int >= 1)
        draws of z. y: (B, *shape) finite data, cast to the parameters' dtype (in [0, 1] for a
        Bernoulli likelihood). generator: the source of the draws (None: torch's global RNG).

        With β = 1 this upper-bounds −log p(y): the variational free energy. Low = good.
        """
        check_int("n_samples", n_samples, minimum=1)
        check_generator("generator", generator)
        y = self._check_input(y, finite=True)
        self._check_range(y)
        mu, logvar = self.encode(y)
        recon = sum(
            self._nll(y, self.decoder(self._reparameterise(mu, logvar, generator)))
            for _ in range(n_samples)
        )
        return recon / n_samples + self.beta * gaussian_kl(mu, logvar)

    def log_likelihood(
        self, y: Tensor, n_samples: int = 64, generator: torch.Generator | None = None
    ) -> Tensor:
        """The importance-weighted bound log (1/K) Σ_k p(y, z_k) / q(z_k|y), z_k ~ q(z|y): (B,).

        K = 1 gives the ELBO (β = 1); the bound tightens towards log p(y) as K grows. It ignores
        β: it bounds the model's true log-likelihood. Cost: K decoder passes; memory O(B·K).
        y: (B, *shape) finite data, cast to the parameters' dtype; n_samples: an int >= 1.
        generator: the source of the K draws z_k (None: torch's global RNG).
        """
        check_int("n_samples", n_samples, minimum=1)
        check_generator("generator", generator)
        y = self._check_input(y, finite=True)
        self._check_range(y)
        mu, logvar = self.encode(y)
        std = (0.5 * logvar).exp()
        log_w = []
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + std * eps
            log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
            log_w.append(log_prior - log_q - self._nll(y, self.decoder(z)))
        return torch.logsumexp(torch.stack(log_w, 1), dim=1) - math.log(n_samples)

    @torch.no_grad()
    def reconstruct(self, y: Tensor) -> Tensor:
        """decode(μ(y)): the mean reconstruction, shaped like y (finite, cast to the parameters'
        dtype)."""
        return self.decode(self.encode(self._check_input(y, finite=True))[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decoded means of n prior draws z ~ N(0, I): (n, *shape).

        n: an int >= 1. generator: the source of z (None: torch's global RNG), on the decoder's
        device. Bernoulli: probabilities in [0, 1]; Gaussian: the means.
        """
        check_int("n", n, minimum=1)
        check_generator("generator", generator)
        param = next(self.decoder.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=param.device)
        return self.decode(z.to(param.dtype))

    @torch.no_grad()
    def interpolate(self, y_a: Tensor, y_b: Tensor, steps: int = 16) -> Tensor:
        """Decode the straight line between the posterior means of two inputs.

        y_a, y_b: one finite input each, (*shape) or (1, *shape), cast to the parameters' dtype.
        steps: the number of points on the line, an int >= 2 (as ``torch.linspace``'s steps).
        Returns (steps, *shape), y_a's end first.
        """
        check_int("steps", steps, minimum=2)
        ends = []
        for name, y in (("y_a", y_a), ("y_b", y_b)):
            y = as_float_tensor(name, y, dtype=self._dtype())
            if self.input_shape is not None and y.ndim == len(self.input_shape):
                y = y[None]
            ends.append(self._check_input(y, name=name))
        mu_a, mu_b = (self.encode(y)[0][:1] for y in ends)
        t = torch.linspace(0, 1, steps, device=mu_a.device, dtype=mu_a.dtype)[:, None]
        return self.decode((1 - t) * mu_a + t * mu_b)

    # ---- the Trainer contract ---------------------------------------------------------------

    def training_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, *shape) or [y, labels, ...]. Returns {"loss": mean −ELBO (β-weighted),
        "recon", "kl"}, all per sample, averaged over the batch (z drawn with the global RNG)."""
        y = batch_data(batch)
        if not self._range_checked:  # first batch only: no host sync per step
            self._check_range(self._check_input(y))
            self._range_checked = True
        terms = self.elbo_terms(y)
        recon, kl = terms["recon"].mean(), terms["kl"].mean()
        return {"loss": recon + self.beta * kl, "recon": recon.detach(), "kl": kl.detach()}

    def validation_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, *shape) or [y, labels, ...]. Returns {"loss": mean −ELBO (β-weighted),
        "recon", "kl"}, one-sample estimates (global RNG) averaged over the batch."""
        y = batch_data(batch)
        terms = self.elbo_terms(y)
        recon, kl = terms["recon"].mean(), terms["kl"].mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on every parameter with ``lr``."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)


# ---- builders -----------------------------------------------------------------------------------


def mlp_encoder(
    input_shape: Sequence[int], latent_dim: int, hidden: Sequence[int] = (400,)
) -> nn.Sequential:
    """Flatten -> Linear/ReLU layers -> 2·latent_dim features. The notes: 784 → 400 → ReLU → 40.

    input_shape: the shape of one input, e.g. (1, 28, 28); latent_dim: d >= 1; hidden: widths of
    the hidden layers (may be empty). The output (B, 2d) holds the posterior means and log-variances.
    """
    shape, d = check_shape("input_shape", input_shape), _check_latent_dim(latent_dim)
    hidden = check_shape("hidden", hidden, allow_empty=True)
    net = nn.Sequential(nn.Flatten(), mlp([math.prod(shape), *hidden, 2 * d], nn.ReLU))
    net.input_shape = shape
    return net


def mlp_decoder(
    output_shape: Sequence[int], latent_dim: int, hidden: Sequence[int] = (400,)
) -> nn.Sequential:
    """latent_dim -> Linear/ReLU layers -> prod(output_shape), reshaped. Outputs logits/means.

    output_shape: the shape of one output, e.g. (1, 28, 28); latent_dim: d >= 1; hidden: widths of
    the hidden layers (may be empty). (B, d) -> (B, *output_shape).
    """
    shape, d = check_shape("output_shape", output_shape), _check_latent_dim(latent_dim)
    hidden = check_shape("hidden", hidden, allow_empty=True)
    return nn.Sequential(mlp([d, *hidden, math.prod(shape)], nn.ReLU), nn.Unflatten(1, shape))


def _check_divisible(shape: tuple[int, ...], n_layers: int) -> None:
    if len(shape) != 3 or shape[1] % 2**n_layers or shape[2] % 2**n_layers:
        raise ValueError(
            f"a conv net with {n_layers} stride-2 layers needs a shape (C, H, W) with H and W "
            f"divisible by {2**n_layers}, got {shape}"
        )


def conv_encoder(
    input_shape: Sequence[int], latent_dim: int, channels: Sequence[int] = (32, 64)
) -> nn.Sequential:
    """Stride-2 4×4 convolutions (each halves H and W) with ReLU, then a linear map to 2·latent_dim.

    input_shape: (C, H, W), H and W divisible by 2^len(channels); latent_dim: d >= 1; channels:
    output channels of each convolution. (B, C, H, W) -> (B, 2d).
    """
    shape, d = check_shape("input_shape", input_shape), _check_latent_dim(latent_dim)
    channels = check_shape("channels", channels)
    _check_divisible(shape, len(channels))
    layers, c_in = [], shape[0]
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.ReLU()]
        c_in = c
    h, w = shape[1] >> len(channels), shape[2] >> len(channels)
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * h * w, 2 * d))
    net.input_shape = shape
    return net


def conv_decoder(
    output_shape: Sequence[int], latent_dim: int, channels: Sequence[int] = (64, 32)
) -> nn.Sequential:
    """A linear map to (channels[0], H/2^k, W/2^k), then stride-2 transposed convolutions.

    output_shape: (C, H, W), H and W divisible by 2^k with k = len(channels); latent_dim: d >= 1;
    channels: input channels of each transposed convolution. (B, d) -> (B, C, H, W) logits/means.
    """
    shape, d = check_shape("output_shape", output_shape), _check_latent_dim(latent_dim)
    channels = check_shape("channels", channels)
    _check_divisible(shape, len(channels))
    h, w = shape[1] >> len(channels), shape[2] >> len(channels)
    layers: list[nn.Module] = [
        nn.Linear(d, channels[0] * h * w),
        nn.ReLU(),
        nn.Unflatten(1, (channels[0], h, w)),
    ]
    for i, c in enumerate(channels):
        c_out = channels[i + 1] if i + 1 < len(channels) else shape[0]
        layers.append(nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1))
        if i + 1 < len(channels):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
