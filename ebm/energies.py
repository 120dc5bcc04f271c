"""Energy functions. An energy maps a sample to one scalar per sample; low energy = compatible.

``Energy.forward(y, x=None)`` returns shape (B,). Unconditional energies ignore ``x``; conditional
ones score the pair (x, y).

Inputs (the library's convention): forward passes take tensors or array-likes, promote integer and
bool data to float and cast floating data to the module's floating dtype (float64 data into a
float32 model is computed in float32); they check shapes only, never values (no host syncs), so
NaN propagates as in torch. ``ClassEnergy.predict``, an inference, rejects NaN/inf inputs.

>>> import torch
>>> from ebm.energies import GaussianEnergy
>>> energy = GaussianEnergy(mean=torch.zeros(2), cov=torch.eye(2))  # E(y) = ½‖y‖²
>>> energy(torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]))  # (B, 2) -> (B,); low = likely
tensor([0.0000, 1.0000, 4.5000])
>>> energy.score(torch.tensor([[1.0, -2.0]]))  # −∇E: points back to the mode
tensor([[-1.,  2.]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_module_input,
    check_finite,
    check_int,
    check_int_sequence,
    check_nonempty,
    check_positive,
    check_real,
    check_tensor,
    input_gradient,
)

__all__ = [
    "BananaEnergy",
    "CircleEnergy",
    "ClassEnergy",
    "Energy",
    "GaussianEnergy",
    "MLPEnergy",
    "SiameseEnergy",
    "mlp",
]


def __dir__() -> list[str]:
    return sorted(__all__)


class Energy(nn.Module):
    """Base class of every energy: ``forward(y, x=None) -> (B,)`` energies, low = compatible.

    Subclasses implement ``forward``; ``score`` (−∇_y E) comes for free. Any ``Energy`` can be
    sampled (``ebm.sampling``), minimised (``ebm.inference``) and trained with the losses of
    ``ebm.losses``.

    >>> import torch
    >>> class Quadratic(Energy):
    ...     def forward(self, y, x=None):
    ...         return 0.5 * y.pow(2).sum(1)
    >>> Quadratic()(torch.tensor([[1.0, 2.0]]))
    tensor([2.5000])
    """

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:  # pragma: no cover
        """The energy of each sample: y (B, ...) and the optional condition x (B, ...) -> (B,).

        Low energy = compatible (likely). Unconditional energies ignore x (or refuse it).
        Subclasses must override this.
        """
        raise NotImplementedError

    def score(self, y: Tensor, x: Tensor | None = None, create_graph: bool = False) -> Tensor:
        """−∇_y E(y, x), shape like ``y``: the direction that lowers the energy fastest.

        y: (B, ...), cast to the module's floating dtype. Works under ``torch.no_grad``.
        ``create_graph=True`` keeps the graph to the parameters (for score-matching losses);
        otherwise the result is detached.
        """
        y = as_module_input("y", y, self)
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            grad = input_gradient("energy", self(y, x), y, create_graph=create_graph)
        return -grad


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last).

    sizes: (in, hidden..., out), at least two ints >= 1; activation: an ``nn.Module`` class
    (or factory) instantiated between layers. Returns an ``nn.Sequential`` mapping (B, in) to
    (B, out).
    """
    sizes = check_int_sequence("sizes", sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least two positive ints, got {sizes}")
    if not callable(activation):
        raise ValueError(f"activation must be an nn.Module class (or factory), got {activation!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPEnergy(Energy):
    """F(y) = MLP(y), or F(x, y) = MLP([x, y]) when ``cond_dim > 0``.

    dim: the data dimension, >= 1; hidden: the hidden widths (ints >= 1); cond_dim: the
    dimension of the condition x, >= 0 (0: unconditional); activation: the ``nn.Module`` class
    between layers (SiLU by default; SiLU/Tanh/Sigmoid/ReLU/Softplus get the samplers' fused
    input gradient). y: (B, dim); x: (B, cond_dim) or None, cast to the parameters' dtype.
    Returns (B,) energies, low = compatible. The weights are torch's default initialisation,
    drawn from the global RNG (seed it with ``torch.manual_seed`` for a reproducible model).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (128, 128),
        cond_dim: int = 0,
        activation: type[nn.Module] = nn.SiLU,
    ):
        super().__init__()
        dim = check_int("dim", dim, minimum=1)
        cond_dim = check_int("cond_dim", cond_dim, minimum=0)
        hidden = check_int_sequence("hidden", hidden)
        self.dim, self.cond_dim = dim, cond_dim
        self.net = mlp([dim + cond_dim, *hidden, 1], activation)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """E(y) or E(x, y): y (B, dim), x (B, cond_dim) (only when cond_dim > 0, else None)
        -> (B,) energies, low = compatible. No value checks: NaN propagates."""
        y = as_module_input("y", y, self, ndim=2)
        if y.shape[1] != self.dim:
            raise ValueError(f"y must have shape (B, {self.dim}), got {tuple(y.shape)}")
        if self.cond_dim:
            if x is not None:
                x = as_module_input("x", x, self)
            if x is None or x.shape != (y.shape[0], self.cond_dim):
                got = None if x is None else tuple(x.shape)
                raise ValueError(f"x must have shape ({y.shape[0]}, {self.cond_dim}), got {got}")
            y = torch.cat([x, y], dim=1)
        elif x is not None:
            raise ValueError("x was given but this MLPEnergy is unconditional (cond_dim=0)")
        return self.net(y).squeeze(-1)


class ClassEnergy(Energy):
    """The notes' "switch" classifier: ``backbone(x)`` gives one energy per label, (B, K).

    backbone: an ``nn.Module`` mapping inputs (B, ...) to (B, K) energies, K >= 2 (low = the
    label fits). ``forward(y, x)`` picks the energy of labels ``y`` (B,) -> (B,). Inference:
    ``predict(x)`` is the argmin over labels. x is cast to the backbone's floating dtype.
    Train it with a loss on ``energies(x)``, e.g. ``ebm.losses.nll_loss(model.energies(x), y)``.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise ValueError(f"backbone must be an nn.Module, got {type(backbone).__name__}")
        self.backbone = backbone

    def energies(self, x: Tensor) -> Tensor:
        """Energies of every label: x (B, ...) -> (B, K), low = the label fits. No value checks
        (a forward pass)."""
        e = self.backbone(as_module_input("x", x, self))
        if not isinstance(e, Tensor) or e.ndim != 2 or e.shape[1] < 2:
            got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
            raise ValueError(f"backbone must return (B, K) energies with K >= 2, got {got}")
        return e

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """E(x, y): the energy of integer labels y (B,) for inputs x (B, ...) -> (B,).

        x is required (None raises a ValueError). No value checks: NaN propagates.
        """
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
        """The label of lowest energy, (B, ...) -> (B,) int64.

        An inference, not a forward pass: x must be finite and hold B >= 1 rows, and a row whose
        energies hold a NaN or are all +inf (no label is preferred) raises a ValueError instead
        of a label.
        """
        x = check_nonempty("x", as_float_tensor("x", x, finite=False))
        check_finite("x", x)
        with torch.no_grad():
            e = self.energies(x)
        undecided = torch.isnan(e).any(1) | (e == float("inf")).all(1)
        if bool(undecided.any()):
            rows = undecided.nonzero().squeeze(1).tolist()
            raise ValueError(
                f"the backbone's energies for x rows {rows[:10]}{' ...' if len(rows) > 10 else ''} "
                f"are NaN or all +inf: no label can be predicted"
            )
        return e.argmin(dim=1)


class SiameseEnergy(Energy):
    """E(y, x) = ‖embed(y) − embed(x)‖₂: low for matching pairs. y, x: (B, ...) -> (B,).

    embed: an ``nn.Module`` mapping (B, ...) to embeddings (B, ...), shared by both inputs.
    Symmetric, exactly zero for identical inputs, and its gradient there is finite (zero: the
    norm's subgradient at 0), so the contrastive losses can train it from any start.
    """

    def __init__(self, embed: nn.Module):
        super().__init__()
        if not isinstance(embed, nn.Module):
            raise ValueError(f"embed must be an nn.Module, got {type(embed).__name__}")
        self.embed = embed

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """The embedding distance of each pair: y, x (B, ...) of one shape -> (B,), >= 0.

        x is required (None raises a ValueError). No value checks: NaN propagates.
        """
        if x is None:
            raise ValueError("SiameseEnergy needs a pair: forward(y, x)")
        y = as_module_input("y", y, self)
        x = as_module_input("x", x, self)
        if x.shape != y.shape or y.ndim < 1:
            raise ValueError(
                f"x and y must have the same shape (B, ...), got x {tuple(x.shape)} and "
                f"y {tuple(y.shape)}"
            )
        diff = (self.embed(y) - self.embed(x)).flatten(1)
        return torch.linalg.vector_norm(diff, dim=1)


# ---- analytic energies for tests and figures -------------------------------------------------


def _check_points(module: nn.Module, y: Tensor, dim: int) -> Tensor:
    """y (B, dim) as a floating tensor in the module's dtype (no value checks)."""
    y = as_module_input("y", y, module, ndim=2)
    if y.shape[1] != dim:
        raise ValueError(f"y must have shape (B, {dim}), got {tuple(y.shape)}")
    return y


class CircleEnergy(Energy):
    """The implicit circle E(y) = (y₁² + y₂² − r²)²: zero exactly on the circle. y: (B, 2) -> (B,).

    radius: r, finite, > 0.
    """

    def __init__(self, radius: float = 1.0):
        super().__init__()
        self.radius = check_positive("radius", radius)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """(y₁² + y₂² − r²)²: y (B, 2) -> (B,), >= 0. x is ignored (unconditional)."""
        y = _check_points(self, y, 2)
        return (y.square().sum(1) - self.radius**2).square()


class GaussianEnergy(Energy):
    """E(y) = ½ (y − μ)ᵀ Σ⁻¹ (y − μ): the energy of N(μ, Σ), whose Boltzmann density is exact.

    mean: (D,); cov: (D, D) symmetric positive definite, finite (tensors or array-likes, stored in
    their common floating dtype). y: (B, D) -> (B,).
    """

    def __init__(self, mean: Tensor, cov: Tensor):
        super().__init__()
        mean = as_float_tensor("mean", mean, ndim=1)
        cov = as_float_tensor("cov", cov, ndim=2)
        dtype = torch.promote_types(mean.dtype, cov.dtype)
        mean, cov = mean.to(dtype), cov.to(device=mean.device, dtype=dtype)
        d = mean.shape[0]
        if d == 0 or cov.shape != (d, d):
            raise ValueError(
                f"cov must have shape ({d}, {d}) to match mean (D >= 1), got {tuple(cov.shape)}"
            )
        if not torch.allclose(cov, cov.mT):
            raise ValueError("cov must be symmetric")
        chol, info = torch.linalg.cholesky_ex(cov)
        if info.item() != 0:
            raise ValueError("cov must be positive definite (its Cholesky factorisation failed)")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("precision", torch.cholesky_inverse(chol))

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """½ (y − μ)ᵀ Σ⁻¹ (y − μ): y (B, D) -> (B,), >= 0. x is ignored (unconditional)."""
        d = _check_points(self, y, self.mean.shape[0]) - self.mean
        return 0.5 * torch.einsum("bi,ij,bj->b", d, self.precision, d)


class BananaEnergy(Energy):
    """A Rosenbrock-like banana: E(y) = y₁²/(2a²) + (y₂ − b·(y₁² − a²))²/2. y: (B, 2) -> (B,).

    Its Boltzmann density is exact: y₁ ~ N(0, a²) and, given y₁, y₂ ~ N(b(y₁² − a²), 1), a
    normal bent along the parabola y₂ = b(y₁² − a²). a: finite, > 0; b: a finite real (the bend).
    """

    def __init__(self, a: float = 1.0, b: float = 1.0):
        super().__init__()
        self.a = check_positive("a", a)
        self.b = check_real("b", b)

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """y₁²/(2a²) + (y₂ − b·(y₁² − a²))²/2: y (B, 2) -> (B,), >= 0. x is ignored."""
        y = _check_points(self, y, 2)
        y1, y2 = y[:, 0], y[:, 1]
        return 0.5 * (y1 / self.a) ** 2 + 0.5 * (y2 - self.b * (y1**2 - self.a**2)) ** 2
