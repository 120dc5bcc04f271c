"""An energy trained by (persistent) contrastive divergence through the shared Trainer.

Maximum likelihood for p(x) = exp(−E(x))/Z has the gradient
    ∇θ NLL = E_data[∇θE(x)] − E_{p_θ}[∇θE(x)],
push the energy down on data, up on the model's own samples. The second expectation uses
negatives from Langevin dynamics (with 1/K over K samples, drawn from p_θ, not hill-climbing: see
the errata on the notes' derivation). Persistent chains keep their state in a ``ReplayBuffer``
between steps (Du & Mordatch 2019), which lives inside the model, so checkpoints save it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_module_input,
    check_betas,
    check_choice,
    check_int,
    check_positive,
    check_real,
    check_shape,
    per_sample_energies,
)
from ebm.losses import contrastive_divergence_loss
from ebm.models._batch import batch_data
from ebm.sampling import ReplayBuffer, langevin, uniform_jump
from ebm.sampling._common import check_clamp

_CHAINS = ("persistent", "noise", "data")

__all__ = ["EBM"]


class EBM(nn.Module):
    """Trains ``energy`` (an ``ebm.Energy`` or any module (B, *data_shape) -> (B,), low = data).

    energy: the network; a (B, 1) output (a network ending in ``Linear(h, 1)``) is squeezed to
        (B,). Its chains take the samplers' fused input gradient when its forward is a
        Linear/Conv/activation chain (see ``ebm.sampling.langevin``), else autograd.
    data_shape: the shape of one sample, e.g. (2,).
    chains: where each step's negative chains start: "persistent" (replay buffer), "noise"
        (fresh noise: short-run MCMC) or "data" (the batch itself: CD-k).
    n_steps, step_size, noise_scale, clamp: the Langevin settings (see ``ebm.sampling.langevin``).
    buffer_size, reinit_prob, init_noise, init_scale: the replay buffer and noise distribution.
    alpha: weight of the energy-magnitude regulariser in ``contrastive_divergence_loss``.
    lr, betas: Adam's settings (β₁ = 0 is common for EBMs: the gradient flips sign often).
    lr_decay_steps, lr_final_ratio: cosine-anneal the learning rate from ``lr`` to
        ``lr · lr_final_ratio`` over the first ``lr_decay_steps`` optimiser steps, then hold it
        (None: a constant ``lr``). Sharp landscapes need a large early rate, to grow the weights
        that make steep walls, and a small late one, so the valleys' depths stop jittering.
    jumps: uniform-jump proposals (``ebm.sampling.uniform_jump``) per chain before each step's
        Langevin run, uniform on the noise box [−init_scale, init_scale]^D (needs
        ``init_noise="uniform"`` and ``clamp=(-init_scale, init_scale)``). Langevin chains hardly cross
        between separated modes, so without jumps the modes' relative masses are barely trained;
        jumps move chains between modes in proportion to exp(−E). 0: none. For low dimensions.
    seed: seeds the replay buffer's initial fill (None: fresh entropy). Training draws its
        negatives (buffer slots, noise, jumps, Langevin noise) from torch's global RNG, which
        ``Trainer(seed=...)`` seeds; ``sample``, ``mcmc``, ``langevin`` and ``noise`` take a
        ``generator``.
    Every hyper-parameter is validated here, by name (finite, in range, the right type).

    Sign convention: ``energy`` is low on data; ``forward(y)`` returns E(y) (B,).
    """

    manual_optimization = True

    def __init__(
        self,
        energy: nn.Module,
        data_shape: Sequence[int],
        chains: str = "persistent",
        n_steps: int = 20,
        step_size: float = 0.01,
        noise_scale: float | None = None,
        clamp: tuple[float, float] | None = None,
        buffer_size: int = 10000,
        reinit_prob: float = 0.05,
        init_noise: str = "uniform",
        init_scale: float = 1.0,
        alpha: float = 0.1,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.999),
        seed: int | None = None,
        lr_decay_steps: int | None = None,
        lr_final_ratio: float = 0.02,
        jumps: int = 0,
    ):
        super().__init__()
        if not isinstance(energy, nn.Module):
            raise ValueError(f"energy must be an nn.Module, got {type(energy).__name__}")
        self.energy = energy
        self.chains = check_choice("chains", chains, _CHAINS)
        n_steps = check_int("n_steps", n_steps, minimum=1)
        self.n_steps, self.step_size = n_steps, check_positive("step_size", step_size)
        if noise_scale is not None:
            check_real("noise_scale", noise_scale, 0.0)
        self.noise_scale, self.clamp = noise_scale, check_clamp(clamp)
        check_real("alpha", alpha, 0.0)
        self.alpha, self.lr = alpha, check_positive("lr", lr)
        self.betas = check_betas("betas", betas)
        # named as the user knows them (the buffer would say capacity, shape, noise, scale)
        data_shape = check_shape("data_shape", data_shape)
        check_int("buffer_size", buffer_size, minimum=1)
        check_real("reinit_prob", reinit_prob, 0.0, 1.0)
        check_choice("init_noise", init_noise, ReplayBuffer.NOISE)
        check_positive("init_scale", init_scale)
        # the buffer also defines the noise distribution used by chains="noise" and sample()
        self.buffer = ReplayBuffer(
            buffer_size, data_shape, reinit_prob, noise=init_noise, scale=init_scale, seed=seed
        )
        # the learning-rate schedule (configure_optimizers)
        if lr_decay_steps is not None:
            check_int("lr_decay_steps", lr_decay_steps, minimum=1)
        self.lr_decay_steps = lr_decay_steps
        self.lr_final_ratio = check_real("lr_final_ratio", lr_final_ratio, 0.0, 1.0)
        self.jumps = check_int("jumps", jumps, minimum=0)
        if self.jumps and init_noise != "uniform":
            raise ValueError(
                f"jumps propose uniform points on the noise box, so they need "
                f"init_noise='uniform', got jumps={jumps!r} with init_noise={init_noise!r}"
            )
        if self.jumps and self.clamp != (-float(init_scale), float(init_scale)):
            raise ValueError(
                f"jumps are exact for chains kept on the box they propose from, so they need "
                f"clamp=(-init_scale, init_scale) = ({-init_scale!r}, {init_scale!r}), got "
                f"clamp={clamp!r}"
            )

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        """Adam(lr, betas) on the energy's parameters; with ``lr_decay_steps``, a dict with the
        optimizer and a per-step cosine ``LambdaLR`` schedule (the Trainer's format)."""
        optimizer = torch.optim.Adam(self.energy.parameters(), lr=self.lr, betas=self.betas)
        if self.lr_decay_steps is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _lr_factor(self, step: int) -> float:
        """lr(step) / lr: cosine from 1 to lr_final_ratio over lr_decay_steps, then constant."""
        progress = min(step, self.lr_decay_steps) / self.lr_decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr_final_ratio + (1.0 - self.lr_final_ratio) * cosine

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws (n, *data_shape) from the chains' initial noise distribution (``init_noise``
        with ``init_scale``), on the buffer's device and dtype.

        n: an int >= 1. generator: the source of the draws (None: torch's global RNG).
        """
        return self.buffer.draw_noise(n, generator)

    def langevin(
        self, x0: Tensor, n_steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Run the model's Langevin chains from x0 (B, *data_shape); detached samples (B, ...).

        x0: a tensor or array-like, cast to the energy's dtype; its values are not read (no host
        sync), so a chain started from NaN stays NaN and leaves the others untouched.
        n_steps: an int >= 0 (default the model's ``n_steps``). generator: the source of the
        Langevin noise (None: torch's global RNG), on the energy's device.
        The chains descend the energy (low = likely) with the model's ``step_size``,
        ``noise_scale`` and ``clamp``.
        """
        x0 = self._check_x0(x0)
        return langevin(
            self.energy,
            x0,
            self.n_steps if n_steps is None else n_steps,
            self.step_size,
            noise_scale=self.noise_scale,
            clamp=self.clamp,
            generator=generator,
        )

    def _check_x0(self, x0, name: str = "x0") -> Tensor:
        x0 = as_module_input(name, x0, self.energy)
        shape = tuple(self.buffer.shape)
        if x0.ndim == 0 or tuple(x0.shape[1:]) != shape or len(x0) == 0:
            raise ValueError(
                f"{name} must have shape (B, {', '.join(map(str, shape))}) with B >= 1, the model's "
                f"data_shape, got {tuple(x0.shape)}"
            )
        return x0

    def mcmc(
        self, x0: Tensor, n_steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """The training chains' kernel run from x0 (B, *data_shape); detached samples (B, ...).

        Blocks of the model's ``n_steps`` Langevin steps, each preceded by ``jumps`` uniform jumps
        (none by default: then this is ``langevin``). x0: as for ``langevin``. n_steps: the total
        number of Langevin steps (default one block); with jumps, a multiple of the model's
        n_steps. generator: the source of the jump proposals and acceptance tests and of the
        Langevin noise (None: torch's global RNG).
        """
        if not self.jumps:
            return self.langevin(x0, n_steps, generator)
        n_steps = self.n_steps if n_steps is None else check_int("n_steps", n_steps, minimum=0)
        if n_steps % self.n_steps:
            raise ValueError(
                f"n_steps must be a multiple of the model's n_steps={self.n_steps} when jumps > 0 "
                f"(a block of Langevin steps follows each round of jumps), got {n_steps!r}"
            )
        x, scale = self._check_x0(x0), self.buffer.scale
        for _ in range(n_steps // self.n_steps):
            x = uniform_jump(self.energy, x, self.jumps, -scale, scale, generator)[0]
            x = self.langevin(x, generator=generator)
        return self.langevin(x, 0) if n_steps == 0 else x

    def _negatives(self, x: Tensor) -> Tensor:
        if self.chains == "data":
            return self.mcmc(x)
        if self.chains == "noise":
            return self.mcmc(self.noise(len(x)))
        return self.buffer.advance(min(len(x), self.buffer.capacity), self.mcmc)

    def training_step(self, batch, optimize) -> dict[str, Tensor]:
        """One contrastive-divergence step (manual optimisation).

        batch: data (B, *data_shape) (a tensor or array-like, cast to the energy's dtype, ints
        promoted; the shape is checked, the values are not read), or a list/tuple whose first
        entry it is (labels ignored). optimize: the Trainer's callback, called once with the loss. Negatives come from the
        chains set by ``chains`` (global RNG). Returns {"loss", "e_data", "e_model"}: the loss
        and the mean energies of data and negatives (training pushes e_data below e_model).
        """
        x = self._check_x0(batch_data(batch), "batch")  # float64 data into a float32 energy: cast
        negatives = self._negatives(x)
        e = self(torch.cat([x, negatives.to(x.dtype)]))
        e_data, e_model = e[: len(x)], e[len(x) :]
        loss = contrastive_divergence_loss(e_data, e_model, self.alpha)
        optimize(loss)
        return {
            "loss": loss.detach(),
            "e_data": e_data.detach().mean(),
            "e_model": e_model.detach().mean(),
        }

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_steps: int | None = None,
        from_buffer: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """n samples (n, *data_shape): the chains' kernel (``mcmc``: Langevin, with the model's
        jumps) from fresh noise (default) or from buffer states.

        n: an int >= 1 (<= buffer_size with ``from_buffer``); n_steps: an int >= 0 (default the
        model's; with jumps a multiple of it); from_buffer: a bool (the chains' end states are
        not pushed back, but slots re-drawn with ``reinit_prob`` are written to the buffer, as
        in training). generator: the source of every draw (the starting noise or buffer slots, the
        jumps and the Langevin noise; None: torch's global RNG), on the model's device: a seeded
        generator gives the same samples on every call.

        >>> import torch
        >>> from ebm.energies import GaussianEnergy
        >>> energy = GaussianEnergy(torch.zeros(2), torch.eye(2))  # low near the origin
        >>> model = EBM(energy, data_shape=(2,), buffer_size=16, seed=0)
        >>> g = torch.Generator().manual_seed(0)
        >>> model.sample(5, n_steps=10, generator=g).shape
        torch.Size([5, 2])
        >>> g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        >>> torch.equal(model.sample(3, generator=g1), model.sample(3, generator=g2))
        True
        """
        check_choice("from_buffer", from_buffer, (False, True))
        check_int("n", n, minimum=1, maximum=self.buffer.capacity if from_buffer else None)
        if n_steps is not None:
            check_int("n_steps", n_steps, minimum=0)
        if from_buffer:
            start = self.buffer.sample(n, generator)[0]
        else:
            start = self.noise(n, generator)
        return self.mcmc(start, n_steps, generator)

    def forward(self, y: Tensor) -> Tensor:
        """The energy E(y), (B,): low = likely. y: (B, *data_shape); a (B, 1) output of the
        energy is squeezed, any other shape raises a ValueError naming ``energy``."""
        return per_sample_energies("energy", self.energy(y), len(y))
