"""A replay buffer of persistent chains for contrastive divergence (Du & Mordatch 2019).

Each training step starts its negative chains from stored states, so chains keep mixing across
steps (persistent CD). With probability ``reinit_prob`` a slot is re-drawn from the noise
distribution instead; the fresh draw is written back to the buffer right away, so the buffer
really holds what the chain started from. The states live in a registered buffer: they move with
``.to(device)`` and are saved in ``state_dict`` (hence in trainer checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    check_shape,
    check_tensor,
    make_generator,
)

__all__ = ["ReplayBuffer"]

_NOISE = ("uniform", "normal")


class ReplayBuffer(nn.Module):
    """``capacity`` stored states of shape ``shape``, initialised from the noise distribution.

    capacity: the number of slots, an int >= 1; shape: one state's shape (ints >= 1).
    noise: the NAME of the initialisation distribution (not a std): "uniform" on
    [−scale, scale] or "normal" with std ``scale``; scale: finite, > 0.
    reinit_prob: probability that a sampled slot is re-drawn from the noise, in [0, 1].
    seed: seeds the initial fill only (None: fresh entropy); ``sample`` and ``draw_noise`` take
    an explicit generator (None: torch's global RNG).

    >>> import torch
    >>> buffer = ReplayBuffer(100, (2,), seed=0)
    >>> states, slots = buffer.sample(8, generator=torch.Generator().manual_seed(0))
    >>> states.shape, slots.shape  # run chains from states, then buffer.push(ends, slots)
    (torch.Size([8, 2]), torch.Size([8]))
    """

    NOISE = _NOISE  # the noise distributions

    def __init__(
        self,
        capacity: int,
        shape: Sequence[int],
        reinit_prob: float = 0.05,
        noise: str = "uniform",
        scale: float = 1.0,
        seed: int | None = None,
    ):
        super().__init__()
        capacity = check_int("capacity", capacity, minimum=1)
        shape = check_shape("shape", shape)
        check_real("reinit_prob", reinit_prob, 0.0, 1.0)
        self.capacity, self.shape, self.reinit_prob = capacity, shape, float(reinit_prob)
        self.noise = check_choice("noise", noise, _NOISE)
        self.scale = check_positive("scale", scale)
        g = make_generator(seed)
        self.register_buffer("samples", self._draw((capacity, *shape), torch.float32, "cpu", g))

    def _draw(self, shape, dtype, device, generator) -> Tensor:
        if self.noise == "uniform":
            u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
            return self.scale * (2.0 * u - 1.0)
        return self.scale * torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n fresh draws (n, *shape) from the initialisation noise, on the buffer's device.

        n: an int >= 1; generator: the random source (None: torch's global RNG).
        """
        check_int("n", n, minimum=1)
        buf = self.samples
        check_generator("generator", generator, buf.device)
        return self._draw((n, *self.shape), buf.dtype, buf.device, generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` distinct slots. Returns (states (n, *shape), slot indices (n,)).

        n: an int in [1, capacity]; generator: the source of the slots and of the re-draws
        (None: torch's global RNG). Each slot is re-initialised with probability ``reinit_prob``: the fresh noise replaces the
        stored state in the buffer too. Pass the chains' end states back with ``push``.
        """
        check_int("n", n, minimum=1, maximum=self.capacity)  # distinct slots: n <= capacity
        buf = self.samples
        check_generator("generator", generator, buf.device)
        idx = torch.randperm(self.capacity, generator=generator, device=buf.device)[:n]
        fresh = self._draw((n, *self.shape), buf.dtype, buf.device, generator)
        reinit = torch.rand(n, generator=generator, device=buf.device) < self.reinit_prob
        states = torch.where(reinit.view(-1, *([1] * len(self.shape))), fresh, buf[idx])
        buf.index_copy_(0, idx, states)  # write the re-draws back
        return states.clone(), idx

    def push(self, states: Tensor, idx: Tensor) -> None:
        """Store ``states`` (n, *shape) into slots ``idx`` (n,) (detached; a tensor or an
        array-like, cast to the buffer's dtype). Values are not read: no host sync."""
        states = as_float_tensor("states", states, finite=False, dtype=self.samples.dtype)
        check_tensor("idx", idx, ndim=1)
        if states.shape != (idx.shape[0], *self.shape):
            raise ValueError(
                f"states must have shape ({idx.shape[0]}, *{self.shape}), got {tuple(states.shape)}"
            )
        self.samples.index_copy_(0, idx, states.detach().to(self.samples.dtype))

    def advance(
        self,
        n: int,
        kernel: Callable[[Tensor], Tensor],
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One round of persistent chains: ``sample`` n slots, run ``kernel`` from them, ``push``
        the end states back. Returns the end states (n, *shape).

        n: an int in [1, capacity]. kernel: a callable (n, *shape) -> (n, *shape), the chains'
        transition (e.g. a few Langevin steps on the model's energy); its output is stored
        detached, without reading its values (no host sync). generator: the source of the slots
        and re-draws (None: torch's global RNG); the kernel draws its own randomness.
        This is the replay-buffer step of persistent contrastive divergence (``ebm.models.EBM``
        and ``ebm.models.JEM`` both train with it).
        """
        if not callable(kernel):
            raise ValueError(
                f"kernel must be callable (n, *shape) -> (n, *shape), got {type(kernel).__name__}"
            )
        start, idx = self.sample(n, generator)
        ends = kernel(start)
        self.push(ends, idx)
        return ends

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None) -> None:
        """Re-draw every slot from the initialisation noise, in place (device and dtype kept).

        generator: the source of the draws (None: torch's global RNG). Used to restart
        persistent chains that have drifted somewhere useless (e.g. after a divergence).
        """
        buf = self.samples
        check_generator("generator", generator, buf.device)
        buf.copy_(self._draw(tuple(buf.shape), buf.dtype, buf.device, generator))

    def extra_repr(self) -> str:
        """The hyper-parameters, shown in the module's repr."""
        return (
            f"capacity={self.capacity}, shape={self.shape}, reinit_prob={self.reinit_prob}, "
            f"noise={self.noise!r}, scale={self.scale}"
        )
