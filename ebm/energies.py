"""Energy functions. An energy maps a sample to one scalar per sample; low energy = compatible.

``Energy.forward(y, x=None)`` returns shape (B,). Unconditional energies ignore ``x``; conditional
ones score the pair (x, y).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import check_positive, check_tensor


class Energy(nn.Module):
    """Base class: ``forward(y, x=None) -> (B,)`` energies, low = compatible."""

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def score(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """−∇_y E(y, x), shape like ``y``: the direction that lowers the energy fastest."""
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(y, x).sum(), y)
        return -grad


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last). sizes: (in, ..., out)"""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must hold at least two positive ints, got {tuple(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPEnergy(Energy):
    """F(y) = MLP(y), or F(x, y) = MLP([x, y]) when ``cond_dim > 0``.

    y: (B, dim); x: (B, cond_dim) or None. Returns (B,).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (128, 128),
        cond_dim: int = 0,
        activation: type[nn.Module] = nn.SiLU,
    ):
        super().__init__()
        if dim < 1 or cond_dim < 0:
            raise ValueError(f"need dim >= 1 and cond_dim >= 0, got dim={dim}, cond_dim={cond_dim}")
        self.dim, self.cond_dim = dim, cond_dim
        self.net = mlp([dim + cond_dim, *hidden, 1], activation)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_tensor("y", y, ndim=2)
        if y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        if self.cond_dim:
            if x is None or x.shape != (y.shape[0], self.cond_dim):
                got = None if x is None else tuple(x.shape)
                raise ValueError(f"x must have shape ({y.shape[0]}, {self.cond_dim}), got {got}")
            y = torch.cat([x, y], dim=1)
        elif x is not None:
            raise ValueError("x was given but this MLPEnergy is unconditional (cond_dim=0)")
        return self.net(y).squeeze(-1)


class ClassEnergy(Energy):
    """The notes' "switch" classifier: ``backbone(x)`` gives one energy per label, (B, K).

    ``forward(y, x)`` picks the energy of labels ``y`` (B,) -> (B,). Inference: ``predict(x)`` is
    the argmin over labels.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def energies(self, x: Tensor) -> Tensor:
        """Energies of every label, (B, K)."""
        e = self.backbone(x)
        if e.ndim != 2 or e.shape[1] < 2:
            raise ValueError(
                f"backbone must return (B, K) energies with K >= 2, got {tuple(e.shape)}"
            )
        return e

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        if x is None:
            raise ValueError("ClassEnergy needs the input x: forward(y, x)")
        e = self.energies(x)
        check_tensor("y", y, ndim=1)
        if y.shape[0] != e.shape[0] or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"y must be integer labels of shape ({e.shape[0]},), got {y.dtype} {tuple(y.shape)}"
            )
        return e.gather(1, y.long().unsqueeze(1)).squeeze(1)

    def predict(self, x: Tensor) -> Tensor:
        """The label of lowest energy, (B,)."""
        return self.energies(x).argmin(dim=1)


class SiameseEnergy(Energy):
    """E(y, x) = ‖embed(y) − embed(x)‖₂: low for matching pairs. y, x: (B, ...) -> (B,)."""

    def __init__(self, embed: nn.Module, eps: float = 1e-9):
        super().__init__()
        self.embed, self.eps = embed, eps

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        if x is None:
            raise ValueError("SiameseEnergy needs a pair: forward(y, x)")
        if x.shape != y.shape:
            raise ValueError(
                f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        diff = (self.embed(y) - self.embed(x)).flatten(1)
        # eps keeps the gradient finite when the two embeddings coincide
        return (diff.pow(2).sum(1) + self.eps).sqrt()


# ---- analytic energies for tests and figures -------------------------------------------------


class CircleEnergy(Energy):
    """The implicit circle E(y) = (y₁² + y₂² − r²)². y: (B, 2) -> (B,)."""

    def __init__(self, radius: float = 1.0):
        super().__init__()
        self.radius = check_positive("radius", radius)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_tensor("y", y, ndim=2)
        return (y.pow(2).sum(1) - self.radius**2).pow(2)


class GaussianEnergy(Energy):
    """E(y) = ½ (y − μ)ᵀ Σ⁻¹ (y − μ): the energy of N(μ, Σ), whose Boltzmann density is exact.

    mean: (D,); cov: (D, D) symmetric positive definite.
    """

    def __init__(self, mean: Tensor, cov: Tensor):
        super().__init__()
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}), got {tuple(cov.shape)}")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("precision", torch.linalg.inv(cov))

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        d = y - self.mean
        return 0.5 * torch.einsum("bi,ij,bj->b", d, self.precision, d)


class BananaEnergy(Energy):
    """A Rosenbrock-like banana: E(y) = y₁²/(2a²) + (y₂ − b·y₁² + b·a²)²/2. y: (B, 2) -> (B,).

    Its Boltzmann density is a standard normal in y₂ bent along the parabola y₂ = b(y₁² − a²).
    """

    def __init__(self, a: float = 1.0, b: float = 1.0):
        super().__init__()
        self.a, self.b = check_positive("a", a), b

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_tensor("y", y, ndim=2)
        y1, y2 = y[:, 0], y[:, 1]
        return 0.5 * (y1 / self.a) ** 2 + 0.5 * (y2 - self.b * (y1**2 - self.a**2)) ** 2
