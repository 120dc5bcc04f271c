"""Autoencoders whose reconstruction error is the energy: E(y) = ‖y − G(y)‖², G = decoder∘encoder.

Low energy = y is reconstructed, i.e. lies near the learned manifold. Two ways keep the energy
from going flat (notes ch. 20):

- ``DenoisingAutoencoder``: train G to map corrupted ỹ back to the clean y, so G(y) − y points
  from off the manifold towards it; its trajectories dy/dt = G(y) − y flow onto the data.
- ``ContractiveAutoencoder``: add λ‖∂h/∂y‖²_F, the squared Frobenius norm of the encoder's
  Jacobian, which makes the code h (and so G) as constant as possible away from the data.

Both are ``nn.Module``s trained through the shared ``ebm.train.Trainer``; ``.mlp(...)`` builds
MLP encoder/decoder pairs. Inputs may be vectors (B, D) or images (B, C, H, W): the energy sums
over every non-batch dimension. Every data-taking method accepts tensors or array-likes, promotes
integer/bool data and casts floating data to the parameters' dtype (float64 data into a float32
model is computed in float32); none checks values (no host syncs), so NaN propagates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_module_input,
    check_choice,
    check_generator,
    check_int,
    check_int_sequence,
    check_positive,
    check_real,
)
from ebm.energies import Energy, mlp
from ebm.models._batch import batch_data

_NOISES = ("gaussian", "mask")

__all__ = ["DenoisingAutoencoder", "ContractiveAutoencoder"]


class _Autoencoder(Energy):
    """The shared part: G(y) = decoder(encoder(y)) and E(y) = ‖y − G(y)‖² (B,)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, lr: float, weight_decay: float):
        super().__init__()
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise ValueError(
                f"encoder and decoder must be nn.Modules, got {type(encoder).__name__} and "
                f"{type(decoder).__name__}"
            )
        self.encoder, self.decoder = encoder, decoder
        self.lr = check_positive("lr", lr)
        self.weight_decay = float(check_real("weight_decay", weight_decay, 0.0))

    @classmethod
    def mlp(
        cls,
        dim: int,
        hidden: Sequence[int] = (64, 64),
        code_dim: int = 2,
        activation: type[nn.Module] = nn.SiLU,
        **kwargs,
    ):
        """An MLP pair: encoder dim -> hidden... -> code_dim, decoder the mirror image.

        dim: the input dimension; hidden: the encoder's widths (the decoder's reversed);
        code_dim: the code's dimension; activation: the layer class between linear maps.
        Inputs are (B, dim) vectors; ``kwargs`` go to the constructor (noise, lr, ...).
        Weights come from torch's default initialisation (the global RNG).
        """
        dim = check_int("dim", dim)
        hidden = check_int_sequence("hidden", hidden)
        code_dim = check_int("code_dim", code_dim)
        encoder = mlp([dim, *hidden, code_dim], activation)
        decoder = mlp([code_dim, *reversed(hidden), dim], activation)
        return cls(encoder, decoder, **kwargs)

    def _input(self, y: Tensor) -> Tensor:
        """y (B, ...) in the parameters' dtype; shapes only, no value checks."""
        y = as_module_input("y", y, self)
        if y.ndim < 2:
            raise ValueError(f"y must be a batch (B, ...) with B first, got {tuple(y.shape)}")
        return y

    def reconstruct(self, y: Tensor) -> Tensor:
        """G(y) = decoder(encoder(y)), shaped like y."""
        y = self._input(y)
        out = self.decoder(self.encoder(y))
        if out.numel() != y.numel():
            raise ValueError(
                f"decoder output {tuple(out.shape)} does not match the input {tuple(y.shape)}"
            )
        return out.reshape(y.shape)

    def field(self, y: Tensor) -> Tensor:
        """The reconstruction field G(y) − y (shaped like y): it points towards the manifold."""
        y = self._input(y)
        return self.reconstruct(y) - y

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """E(y) = ‖y − G(y)‖² summed over all but the batch dimension: (B, ...) -> (B,)."""
        y = self._input(y)
        return (y - self.reconstruct(y)).flatten(1).square().sum(1)

    def energy(self, y: Tensor) -> Tensor:
        """E(y) = ‖y − G(y)‖², (B, ...) -> (B,): low = near the learned manifold (as ``forward``)."""
        return self(y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on every parameter with ``lr`` and PyTorch's ``weight_decay``."""
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def validation_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, ...) or [y, labels, ...]. Returns {"energy": the mean clean energy}."""
        return {"energy": self(batch_data(batch)).mean()}


class DenoisingAutoencoder(_Autoencoder):
    """Trained on ‖y − G(ỹ)‖² with ỹ a corrupted y; its energy is the clean ‖y − G(y)‖².

    encoder: (B, ...) -> (B, *code) and decoder: (B, *code) -> (B, ...), any ``nn.Module``s
        whose composition G returns as many values per sample as it is given.
    noise: the kind of corruption, "gaussian" (ỹ = y + sigma·ε, ε ~ N(0, I); ``sigma`` finite,
        > 0) or "mask" (each entry of y zeroed with probability ``p`` in [0, 1)).
    lr, weight_decay: Adam's learning rate (> 0) and PyTorch's weight decay (>= 0).
    Training draws the corruption from torch's global RNG (seeded by the Trainer), like dropout;
    ``corrupt`` takes a ``generator``.

    >>> import torch
    >>> dae = DenoisingAutoencoder.mlp(dim=2, hidden=(8,), code_dim=1, sigma=0.1)
    >>> dae.energy(torch.zeros(5, 2)).shape  # one energy per sample, low = reconstructed
    torch.Size([5])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        noise: str = "gaussian",
        sigma: float = 0.3,
        p: float = 0.3,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__(encoder, decoder, lr, weight_decay)
        self.noise = check_choice("noise", noise, _NOISES)
        self.sigma = check_positive("sigma", sigma)
        self.p = float(check_real("p", p, 0.0, 1.0, high_inclusive=False))

    def corrupt(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ỹ, the corrupted y (B, ...), shaped like y and in the parameters' dtype.

        y: (B, ...), a tensor or an array-like (no value checks: NaN propagates).
        generator: the source of the noise or mask (None: torch's global RNG), on y's device.
        """
        check_generator("generator", generator)
        y = self._input(y)
        if self.noise == "gaussian":
            eps = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            return y + self.sigma * eps
        u = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y * (u >= self.p).to(y.dtype)

    def training_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, ...) or [y, labels, ...]. Returns {"loss": mean ‖y − G(ỹ)‖²}, ỹ drawn
        with the global RNG."""
        y = self._input(batch_data(batch))
        loss = (y - self.reconstruct(self.corrupt(y))).flatten(1).square().sum(1).mean()
        return {"loss": loss}


class ContractiveAutoencoder(_Autoencoder):
    """Trained on ‖y − G(y)‖² + λ‖∂h/∂y‖²_F with h = encoder(y) (Rifai et al. 2011).

    encoder, decoder: as for ``DenoisingAutoencoder``. lr, weight_decay: Adam's learning rate
    (> 0) and PyTorch's weight decay (>= 0).
    jacobian_weight: λ >= 0. The penalty is exact: one Jacobian per sample with torch.func
    (forward mode when the input is the smaller side, reverse mode otherwise) under vmap, and
    it is differentiable w.r.t. the parameters. The encoder must treat samples independently
    (no batch norm).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        jacobian_weight: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__(encoder, decoder, lr, weight_decay)
        self.jacobian_weight = float(check_real("jacobian_weight", jacobian_weight, 0.0))

    def contractive_penalty(self, y: Tensor) -> Tensor:
        """‖∂h/∂y‖²_F for every sample: (B, ...) -> (B,)."""
        from torch.func import jacfwd, jacrev, vmap

        y = self._input(y)
        if y.shape[0] == 0:
            return y.new_zeros(0)

        def encode_one(sample: Tensor) -> Tensor:
            return self.encoder(sample.unsqueeze(0)).squeeze(0)

        with torch.no_grad():
            code_size = self.encoder(y[:1]).numel()
        jacobian = jacfwd if y[0].numel() <= code_size else jacrev
        J = vmap(jacobian(encode_one))(y)  # (B, *code, *input)
        return J.flatten(1).square().sum(1)

    def training_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, ...) or [y, labels, ...]. Returns {"loss": reconstruction + λ·penalty,
        "reconstruction", "penalty"}, each averaged over the batch (the last two detached)."""
        y = self._input(batch_data(batch))
        reconstruction = self(y).mean()
        penalty = self.contractive_penalty(y).mean()
        loss = reconstruction + self.jacobian_weight * penalty
        return {
            "loss": loss,
            "reconstruction": reconstruction.detach(),
            "penalty": penalty.detach(),
        }
