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

    def score(self, y: Tensor, x: Tensor | None = None, create_graph: bool = False) -> Tensor:
        """−∇_y E(y, x), shape like ``y``: the direction that lowers the energy fastest.

        y: floating (B, ...). Works under ``torch.no_grad``. ``create_graph=True`` keeps the graph
        to the parameters (for score-matching losses); otherwise the result is detached.
        """
        check_tensor("y", y)
        if not y.is_floating_point():
            raise ValueError(f"score needs a floating-point y, got {y.dtype}")
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(y, x).sum(), y, create_graph=create_graph)
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
        if isinstance(dim, bool) or not isinstance(dim, int) or not isinstance(cond_dim, int):
            raise ValueError(
                f"dim and cond_dim must be ints, got dim={dim!r}, cond_dim={cond_dim!r}"
            )
        if dim < 1 or cond_dim < 0:
            raise ValueError(f"need dim >= 1 and cond_dim >= 0, got dim={dim}, cond_dim={cond_dim}")
        self.dim, self.cond_dim = dim, cond_dim
        self.net = mlp([dim + cond_dim, *hidden, 1], activation)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_tensor("y", y, ndim=2)
        if y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        if self.cond_dim:
            if not isinstance(x, Tensor) or x.shape != (y.shape[0], self.cond_dim):
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
        if y.shape[0] != e.shape[0] or y.is_floating_point() or y.dtype == torch.bool:
            raise ValueError(
                f"y must be integer labels of shape ({e.shape[0]},), got {y.dtype} {tuple(y.shape)}"
            )
        return e.gather(1, y.long().unsqueeze(1)).squeeze(1)

    def predict(self, x: Tensor) -> Tensor:
        """The label of lowest energy, (B,)."""
        return self.energies(x).argmin(dim=1)


class SiameseEnergy(Energy):
    """E(y, x) = ‖embed(y) − embed(x)‖₂: low for matching pairs. y, x: (B, ...) -> (B,).

    Symmetric, exactly zero for identical inputs, and its gradient there is finite (zero: the
    norm's subgradient at 0), so the contrastive losses can train it from any start.
    """

    def __init__(self, embed: nn.Module):
        super().__init__()
        self.embed = embed

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        if x is None:
            raise ValueError("SiameseEnergy needs a pair: forward(y, x)")
        check_tensor("y", y)
        check_tensor("x", x)
        if x.shape != y.shape or y.ndim < 1:
            raise ValueError(
                f"x and y must have the same shape (B, ...), got x {tuple(x.shape)} and "
                f"y {tuple(y.shape)}"
            )
        diff = (self.embed(y) - self.embed(x)).flatten(1)
        return torch.linalg.vector_norm(diff, dim=1)


# ---- analytic energies for tests and figures -------------------------------------------------


def _check_points(y: Tensor, dim: int) -> Tensor:
    check_tensor("y", y, ndim=2)
    if y.shape[1] != dim:
        raise ValueError(f"y must have shape (B, {dim}), got {tuple(y.shape)}")
    return y


class CircleEnergy(Energy):
    """The implicit circle E(y) = (y₁² + y₂² − r²)²: zero exactly on the circle. y: (B, 2) -> (B,)."""

    def __init__(self, radius: float = 1.0):
        super().__init__()
        self.radius = check_positive("radius", radius)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        _check_points(y, 2)
        return (y.square().sum(1) - self.radius**2).square()


class GaussianEnergy(Energy):
    """E(y) = ½ (y − μ)ᵀ Σ⁻¹ (y − μ): the energy of N(μ, Σ), whose Boltzmann density is exact.

    mean: (D,); cov: (D, D) symmetric positive definite. y: (B, D) -> (B,).
    """

    def __init__(self, mean: Tensor, cov: Tensor):
        super().__init__()
        check_tensor("mean", mean, ndim=1)
        check_tensor("cov", cov)
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(
                f"cov must have shape ({d}, {d}) to match mean, got {tuple(cov.shape)}"
            )
        if not torch.allclose(cov, cov.mT):
            raise ValueError("cov must be symmetric")
        chol, info = torch.linalg.cholesky_ex(cov)
        if info.item() != 0:
            raise ValueError("cov must be positive definite (its Cholesky factorisation failed)")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("precision", torch.cholesky_inverse(chol))

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        d = _check_points(y, self.mean.shape[0]) - self.mean
        return 0.5 * torch.einsum("bi,ij,bj->b", d, self.precision, d)


class BananaEnergy(Energy):
    """A Rosenbrock-like banana: E(y) = y₁²/(2a²) + (y₂ − b·(y₁² − a²))²/2. y: (B, 2) -> (B,).

    Its Boltzmann density is exact: y₁ ~ N(0, a²) and, given y₁, y₂ ~ N(b(y₁² − a²), 1), a
    normal bent along the parabola y₂ = b(y₁² − a²).
    """

    def __init__(self, a: float = 1.0, b: float = 1.0):
        super().__init__()
        self.a = check_positive("a", a)
        if isinstance(b, bool) or not isinstance(b, (int, float)):
            raise ValueError(f"b must be a real number, got {b!r}")
        self.b = b

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        _check_points(y, 2)
        y1, y2 = y[:, 0], y[:, 1]
        return 0.5 * (y1 / self.a) ** 2 + 0.5 * (y2 - self.b * (y1**2 - self.a**2)) ** 2
