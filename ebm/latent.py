"""Latent-variable energies E(x, y, z): z is never observed, so inference removes it.

Zero temperature minimises over z, F∞(x, y) = min_z E(x, y, z), and returns the best latent ž;
finite temperature marginalises over a grid of z, F_β(x, y) = −(1/β) log Σ_z exp(−β E(x, y, z))
(``ebm.inference.free_energy``, the library's convention), or with ``average=True`` over a uniform
prior on the grid, −(1/β) log mean_z exp(−β E(x, y, z)) = F_β + log(Nz)/β, which does not drift
with the grid size Nz. Either F is an ordinary energy of (x, y): low = compatible.

``TemplateEnergy`` is the discrete case of the notes' fig. 17.1: z is the position of a window
in an image, searched exhaustively, and F(x, k) for every label k is a ``ClassEnergy``'s backbone.

Training ("energy loss on the free energy") pushes F down on the data and nothing up. In general
that collapses: a decoder flexible enough to reach every y for some z (e.g. a z as big as y)
makes F = 0 everywhere, a flat energy that says nothing. The ellipse and horn decoders cannot
do that: z is one angle, so for each x the zero-energy set {G(x, z) : z} is a closed curve, a set
of zero area in the y-plane, and F grows quadratically off it. Like PCA and k-means (notes,
ch. 20), the architecture limits the volume of low energy, so pushing down alone is enough.

>>> import torch
>>> model = EllipseEnergy(w=(2.0, 1.5), n_z=48)  # E(y, z) = ‖y − (2 cos z, 1.5 sin z)‖²
>>> y = torch.tensor([[2.0, 0.0], [0.0, 1.5], [3.0, 0.0]])  # two points on the ellipse, one off
>>> F, z = model.free_energy(y)  # zero temperature: min over the 48 grid angles
>>> F.detach().round(decimals=4)  # (B,) free energies: 0 on the ellipse, (3 − 2)² = 1 off it
tensor([0., 0., 1.])
>>> z[:, 0]  # the inferred angles ž: 0, π/2, 0
tensor([0.0000, 1.5708, 0.0000])
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_module_input,
    check_choice,
    check_int,
    check_int_sequence,
    check_positive,
)
from ebm.energies import Energy, mlp
from ebm.inference import exhaustive_search, free_energy, gradient_descent, lbfgs

__all__ = ["EllipseEnergy", "HornEnergy", "LatentEnergy", "LatentFreeEnergy", "TemplateEnergy"]


def __dir__() -> list[str]:
    return sorted(__all__)


class LatentFreeEnergy(NamedTuple):
    """free_energy: (B,) F(x, y); z: (B, Dz) the best latent ž = argmin_z E (the posterior mode).

    ``TemplateEnergy.free_energy`` returns one per label: free_energy (B, K), z (B, K, 2).
    """

    free_energy: Tensor
    z: Tensor


def _tile(t: Tensor | None, times: int) -> Tensor | None:
    """(N, D) -> (times·N, D), block-repeated (restart-major), or None."""
    return None if t is None else t.repeat(times, *([1] * (t.ndim - 1)))


def _z_by_grid(model: LatentEnergy, y: Tensor, x: Tensor | None) -> LatentFreeEnergy:
    found = exhaustive_search(lambda z: model.grid_energies(y, x, z), model.z_grid)
    return LatentFreeEnergy(found.energy, found.argmin)


def _z_by_descent(solver: Callable) -> Callable:
    def infer(model: LatentEnergy, y: Tensor, x: Tensor | None) -> LatentFreeEnergy:
        starts = model.z_grid[:, None].expand(-1, y.shape[0], -1)  # (R, B, Dz): every grid z
        restarts = starts.shape[0]

        def energy(z: Tensor) -> Tensor:  # (R·B, Dz) -> (R·B,)
            return model.energy(_tile(y, restarts), z, _tile(x, restarts))

        found = solver(energy, starts, **model.inference_options)
        return LatentFreeEnergy(found.energy, found.argmin)

    return infer


# The solver behind each inference, whose keyword arguments inference_options may set.
_SOLVERS = {"grid": None, "gradient": gradient_descent, "lbfgs": lbfgs}
_SET_BY_THE_MODEL = ("energy", "init", "candidates")


# Solver options renamed in 0.2 (accepted until 0.3 with a DeprecationWarning): old -> new.
_RENAMED_OPTIONS = {"gradient": {"steps": "n_steps"}}


def _caller_outside_ebm() -> int:
    """The ``stacklevel`` that points a warning raised by our caller at the first frame outside
    the ``ebm`` package (the user's line, wherever the model subclasses ``LatentEnergy``)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep  # .../ebm/
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _renamed_options(inference: str, options: dict) -> dict:
    """``options`` with 0.1's names replaced by the new ones, each with a DeprecationWarning."""
    options = dict(options)
    for old, new in _RENAMED_OPTIONS.get(inference, {}).items():
        if old not in options:
            continue
        if new in options:
            raise TypeError(f"inference_options hold both {old!r} (deprecated) and {new!r}")
        warnings.warn(
            f"inference_options: {old!r} is deprecated and will be removed in 0.3; use {new!r}",
            DeprecationWarning,
            stacklevel=_caller_outside_ebm(),
        )
        options[new] = options.pop(old)
    return options


def _check_options(inference: str, options: dict) -> None:
    """Refuse options the solver does not take (a typo would otherwise fail at the first call)."""
    solver = _SOLVERS[inference]
    allowed = () if solver is None else tuple(inspect.signature(solver).parameters)
    allowed = tuple(name for name in allowed if name not in _SET_BY_THE_MODEL)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"inference_options {unknown} are not options of inference={inference!r}; "
            f"allowed: {list(allowed)}"
        )


# How F∞ finds ž: search the grid, or descend from every grid point (continuous z).
_INFERENCE = {
    "grid": _z_by_grid,
    "gradient": _z_by_descent(gradient_descent),
    "lbfgs": _z_by_descent(lbfgs),
}


class LatentEnergy(Energy):
    """A latent-variable energy E(y, z, x) with z-inference built in. Low = compatible.

    energy: optional callable ``(y (N, Dy), z (N, Dz), x (N, Dx) | None) -> (N,)``; an
    ``nn.Module`` is registered as a submodule. Subclasses override ``energy`` instead.
    z_grid: (Nz, Dz) or (Nz,) finite latent values (a tensor or array-like; integers become
    floats): the candidates of ``inference="grid"``, the restarts of "gradient"/"lbfgs"
    (continuous z), and the quadrature points of finite-β marginalisation.
    inference: "grid", "gradient" or "lbfgs" (see ``ebm.inference``); inference_options go to
    the solver (e.g. ``{"n_steps": 50, "lr": 0.1}`` for "gradient"). Gradients reach the parameters by the
    envelope theorem: ž is detached and E is re-evaluated there.
    beta: the temperature ``forward`` and ``training_step`` use (math.inf: zero temperature).
    average: the form of the finite-β free energy ``forward`` uses and ``free_energy`` defaults
    to: False for −(1/β) log Σ_z exp(−βE) (the library's convention), True for
    −(1/β) log mean_z exp(−βE) (a uniform prior on the grid; ≥ min E, so it stays positive for
    non-negative E, e.g. on a log plot). Gradients are the same.
    lr: Adam learning rate of ``configure_optimizers``.
    """

    _y_dim: int | None = None  # Dy and Dx where a subclass fixes them (checked on entry)
    _x_dim: int | None = None

    def __init__(
        self,
        z_grid: Tensor,
        energy: Callable[[Tensor, Tensor, Tensor | None], Tensor] | None = None,
        inference: str = "grid",
        inference_options: dict | None = None,
        beta: float = math.inf,
        lr: float = 1e-2,
        average: bool = False,
    ):
        super().__init__()
        z_grid = as_float_tensor("z_grid", z_grid, ndim=(1, 2))
        if z_grid.ndim == 1:
            z_grid = z_grid[:, None]
        if z_grid.shape[0] == 0 or z_grid.shape[1] == 0:
            raise ValueError(
                f"z_grid must be a non-empty array of shape (Nz, Dz) or (Nz,), got "
                f"{tuple(z_grid.shape)}"
            )
        check_choice("inference", inference, tuple(_INFERENCE))
        if energy is not None and not callable(energy):
            raise ValueError(f"energy must be callable, got {type(energy).__name__}")
        if inference_options is not None and not isinstance(inference_options, dict):
            raise ValueError(f"inference_options must be a dict, got {inference_options!r}")
        inference_options = _renamed_options(inference, inference_options or {})
        _check_options(inference, inference_options)
        self.register_buffer("z_grid", z_grid.clone())
        self._energy_fn = energy
        self.inference = inference
        self.inference_options = inference_options
        self.beta = check_positive("beta", beta, allow_inf=True)
        if not isinstance(average, bool):
            raise ValueError(f"average must be a bool, got {average!r}")
        self.average = average
        self.lr = check_positive("lr", lr)

    # ---- the energy and its evaluation on the grid --------------------------------------------

    def energy(self, y: Tensor, z: Tensor, x: Tensor | None = None) -> Tensor:
        """E(y, z, x) for matched rows: y (N, Dy), z (N, Dz), x (N, Dx) or None -> (N,)."""
        if self._energy_fn is None:
            raise NotImplementedError("pass energy=... or override LatentEnergy.energy")
        return self._energy_fn(y, z, x)

    def grid_energies(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E of every sample against every latent value: (B, Nz). y: (B, Dy); x: (B, Dx) or None;
        z: (Nz, Dz), default z_grid. Inputs are cast to the model's floating dtype."""
        y, x = self._inputs(y, x)
        z = self.z_grid if z is None else as_module_input("z", z, self, ndim=2)
        b, n = y.shape[0], z.shape[0]
        y_rows = y[:, None].expand(b, n, *y.shape[1:]).reshape(b * n, *y.shape[1:])
        z_rows = z[None].expand(b, n, *z.shape[1:]).reshape(b * n, *z.shape[1:])
        x_rows = None if x is None else x[:, None].expand(b, n, *x.shape[1:]).reshape(b * n, -1)
        e = self.energy(y_rows, z_rows, x_rows)
        if not isinstance(e, Tensor) or e.shape != (b * n,):
            got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
            raise ValueError(f"energy must return ({b * n},) energies, got {got}")
        return e.reshape(b, n)

    # ---- inference ----------------------------------------------------------------------------

    def _inputs(self, y: Tensor, x: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """y (B, Dy) and x (B, Dx) or None as the model's floating dtype (no value checks)."""
        y = as_module_input("y", y, self, ndim=2)
        if self._y_dim is not None and y.shape[1] != self._y_dim:
            raise ValueError(f"y must have shape (B, {self._y_dim}), got {tuple(y.shape)}")
        if x is not None:
            x = as_module_input("x", x, self, ndim=2)
            if self._x_dim is not None and x.shape[1] != self._x_dim:
                raise ValueError(f"x must have shape (B, {self._x_dim}), got {tuple(x.shape)}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"x and y must hold the same number of samples, got x {tuple(x.shape)} "
                    f"and y {tuple(y.shape)}"
                )
        return y, x

    def free_energy(
        self,
        y: Tensor,
        x: Tensor | None = None,
        beta: float = math.inf,
        *,
        average: bool | None = None,
    ) -> LatentFreeEnergy:
        """F_β(x, y) and ž. y: (B, Dy); x: (B, Dx) or None. Returns ((B,), (B, Dz)), low F =
        compatible.

        beta: the inverse temperature, > 0 (default ``math.inf``, NOT the model's own
        ``self.beta``, which ``forward`` uses). β = ∞ minimises with the model's ``inference``; a finite β marginalises over z_grid:
        −(1/β) log Σ_z exp(−βE) (the library's convention), or with ``average=True``
        −(1/β) log mean_z exp(−βE), a uniform prior on the grid (see
        ``ebm.inference.free_energy``); ``average=None`` uses the model's ``average``. ž is the
        grid point of lowest energy (the posterior mode).
        y and x may be array-likes; they are cast to the model's floating dtype. No value checks
        (a forward pass): NaN propagates.
        """
        y, x = self._inputs(y, x)
        check_positive("beta", beta, allow_inf=True)
        if average is None:
            average = self.average
        elif not isinstance(average, bool):
            raise ValueError(f"average must be None or a bool, got {average!r}")
        if math.isinf(beta):
            return _INFERENCE[self.inference](self, y, x)
        energies = self.grid_energies(y, x)  # (B, Nz)
        best = energies.detach().argmin(1)
        return LatentFreeEnergy(free_energy(energies, beta, average=average), self.z_grid[best])

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """F_β(x, y) at the model's own temperature ``self.beta``: (B,). Low = compatible."""
        return self.free_energy(y, x, self.beta).free_energy

    # ---- training through ebm.train.Trainer ---------------------------------------------------

    @staticmethod
    def _unpack(batch) -> tuple[Tensor, Tensor | None]:
        """A batch is y (a tensor or numpy array), [y] or [x, y] (the order of ``horn``'s x, y);
        y without samples is refused (its mean free energy would be NaN). Shapes only."""
        if not isinstance(batch, (list, tuple)):
            y, x = batch, None
        elif len(batch) in (1, 2):
            y, x = (batch[0], None) if len(batch) == 1 else (batch[1], batch[0])
        else:
            raise ValueError(
                f"batch must be y, [y] or [x, y], got a {type(batch).__name__} of length "
                f"{len(batch)}"
            )
        shape = getattr(y, "shape", None)
        if shape is not None and len(shape) > 0 and shape[0] == 0:
            raise ValueError(f"batch must hold at least one sample (B >= 1), got y {tuple(shape)}")
        return y, x

    def training_step(self, batch) -> Tensor:
        """The energy loss on the free energy: mean F_β(x, y) over the batch.

        batch: y (B, Dy), [y] or [x, y] (the order of ``ebm.data.horn``'s x, y).
        """
        y, x = self._unpack(batch)
        return self(y, x).mean()

    def validation_step(self, batch) -> dict[str, Tensor]:
        """``{"free_energy": mean F_β(x, y)}`` over a validation batch (y, [y] or [x, y])."""
        y, x = self._unpack(batch)
        return {"free_energy": self(y, x).mean()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the parameters at learning rate ``lr`` (called by ``ebm.train.Trainer``)."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _angle_grid(n_z: int) -> Tensor:
    n_z = check_int("n_z", n_z, minimum=1)
    return (2 * math.pi / n_z) * torch.arange(n_z, dtype=torch.float32)[:, None]


def _squared_error(y: Tensor, prediction: Tensor) -> Tensor:
    if y.shape != prediction.shape:
        raise ValueError(f"y must have shape {tuple(prediction.shape)}, got {tuple(y.shape)}")
    return (y - prediction).pow(2).sum(1)


class EllipseEnergy(LatentEnergy):
    """The ellipse decoder energy E(y, z) = (y₁ − w₁ cos z)² + (y₂ − w₂ sin z)², learnable w.

    y: (N, 2); z: (N, 1) angles. w: initial (w₁, w₂), two finite numbers; the data's ellipse
    has w = ρ(x) (``ebm.data.latent_toys.radii``), (2, 1.5) at x = 0. n_z: the grid of n_z
    angles over [0, 2π), an int >= 1. inference, inference_options, beta, lr, average: as in
    ``LatentEnergy`` (lr: Adam's learning rate).
    """

    _y_dim = 2

    def __init__(
        self,
        w: tuple[float, float] = (1.0, 1.0),
        n_z: int = 48,
        *,
        inference: str = "grid",
        inference_options: dict | None = None,
        beta: float = math.inf,
        lr: float = 1e-2,
        average: bool = False,
    ):
        w = as_float_tensor("w", w, ndim=1, dtype=torch.float32)
        if w.shape != (2,):
            raise ValueError(f"w must hold two numbers, got shape {tuple(w.shape)}")
        super().__init__(
            _angle_grid(n_z),
            inference=inference,
            inference_options=inference_options,
            beta=beta,
            lr=lr,
            average=average,
        )
        self.w = nn.Parameter(w.clone())

    def decode(self, z: Tensor) -> Tensor:
        """The point of the ellipse at angle z: (N, 1) -> (N, 2). z may be an array-like;
        integers and bools are promoted, floating values cast to w's dtype (no value checks)."""
        z = as_module_input("z", z, self)
        return self.w * torch.cat([z.cos(), z.sin()], dim=1)

    def energy(self, y: Tensor, z: Tensor, x: Tensor | None = None) -> Tensor:
        """E(y, z): y (N, 2), z (N, 1) -> (N,), low = y near the ellipse's point at angle z.
        x: ignored (the ellipse is unconditional). Array-likes accepted and cast like
        ``decode``'s z; NaN propagates to its row."""
        return _squared_error(as_module_input("y", y, self), self.decode(z))

    def training_step(self, batch) -> dict[str, Tensor]:
        """Mean F_β, plus w₁ and w₂ as metrics so that a run's history traces w.

        batch: y (B, 2) or [y]. Returns ``{"loss", "w1", "w2"}``.
        """
        w = self.w.detach()
        return {"loss": super().training_step(batch), "w1": w[0], "w2": w[1]}


class HornEnergy(LatentEnergy):
    """The conditional horn E(x, y, z) = (y₁ − f₁(x) cos z)² + (y₂ − f₂(x) sin z)².

    f: the 1 → 8 → 8 → 2 ReLU net (``hidden`` widths, ints >= 1) mapping the input x to the
    radii. x: (N, 1); y: (N, 2); z: (N, 1) angles on a grid of n_z (an int >= 1) over [0, 2π).
    inference, inference_options, beta, lr, average: as in ``LatentEnergy`` (lr: Adam's
    learning rate). The net's weights are torch's default initialisation (global RNG).
    """

    _y_dim, _x_dim = 2, 1

    def __init__(
        self,
        hidden: tuple[int, ...] = (8, 8),
        n_z: int = 48,
        *,
        inference: str = "grid",
        inference_options: dict | None = None,
        beta: float = math.inf,
        lr: float = 1e-2,
        average: bool = False,
    ):
        hidden = check_int_sequence("hidden", hidden)
        super().__init__(
            _angle_grid(n_z),
            inference=inference,
            inference_options=inference_options,
            beta=beta,
            lr=lr,
            average=average,
        )
        self.f = mlp([1, *hidden, 2], nn.ReLU)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        """The point of the ellipse of input x at angle z: (N, 1), (N, 1) -> (N, 2). z and x may
        be array-likes; integers and bools are promoted, floating values cast to the net's
        dtype (no value checks)."""
        z, x = as_module_input("z", z, self), as_module_input("x", x, self)
        return self.f(x) * torch.cat([z.cos(), z.sin()], dim=1)

    def energy(self, y: Tensor, z: Tensor, x: Tensor | None = None) -> Tensor:
        """E(x, y, z): y (N, 2), z (N, 1), x (N, 1) -> (N,), low = y near the point of x's
        ellipse at angle z. Array-likes accepted and cast like ``decode``'s; NaN propagates."""
        if x is not None:
            x = as_module_input("x", x, self)
        if x is None or x.ndim != 2 or x.shape[1] != 1:
            got = None if x is None else tuple(x.shape)
            raise ValueError(f"HornEnergy needs the input x of shape (N, 1), got {got}")
        return _squared_error(as_module_input("y", y, self), self.decode(z, x))


class TemplateEnergy(nn.Module):
    """Per-class templates slid over an image, the position z a discrete latent (notes, fig. 17.1).

    The energy of label k at position z = (row, col) is the squared distance between the window
    of x whose top-left corner is z and template k, low = the window looks like class k:

        E(x, k, z) = ‖x[:, z₀ : z₀ + h, z₁ : z₁ + w] − t_k‖²,

    computed for every position at once as ‖window‖² − 2 t_k·window + ‖t_k‖² (``F.unfold`` and one
    product, no loop over positions; exact up to rounding of order eps·‖window‖²). ``forward``
    removes z by the free energy over the Nz = (H − h + 1)(W − w + 1) positions: the min at
    β = ∞ (by ``ebm.inference.exhaustive_search``), −(1/β) log Σ_z exp(−βE) at finite β
    (``ebm.inference.free_energy``). It maps images to one free energy per label, (B, K), so it
    is the backbone of an ``ebm.energies.ClassEnergy``: ``ClassEnergy(TemplateEnergy(t))``
    gives E(x, y) = F_β(x, y), ``predict`` the label and ``free_energy(x).z`` the location.

    templates: (K, C, h, w) initial templates, K >= 2 (a tensor or array-like, finite; integers
    promoted to float), trained as the parameter ``templates``. beta: the inverse temperature
    of ``forward``, > 0 (math.inf, the default: the min over positions).
    Inputs x: (B, C, H, W) with H >= h and W >= w, cast to the templates' dtype; forward
    passes check shapes only (NaN propagates).

    >>> import torch
    >>> model = TemplateEnergy(torch.eye(2).reshape(2, 1, 1, 2))  # K=2 templates of 1×2 pixels
    >>> x = torch.tensor([[[[0.0, 0.0, 1.0, 0.0]]]])  # (B=1, C=1, H=1, W=4)
    >>> model.energy_map(x)[0, :, 0].detach()  # (K, Nz = 3): [1, 0] fits at z = (0, 2)
    tensor([[1., 2., 0.],
            [1., 0., 2.]])
    >>> found = model.free_energy(x)  # the min over z for each label, and where
    >>> found.free_energy.detach(), found.z[0]  # (B, K) and (B, K, 2)
    (tensor([[0., 0.]]), tensor([[0, 2],
            [0, 1]]))
    """

    def __init__(self, templates: Tensor, beta: float = math.inf):
        super().__init__()
        templates = as_float_tensor("templates", templates, ndim=4)
        if templates.shape[0] < 2 or 0 in templates.shape:
            raise ValueError(
                f"templates must have shape (K, C, h, w) with K >= 2 and no empty dimension, "
                f"got {tuple(templates.shape)}"
            )
        self.templates = nn.Parameter(templates.clone())
        self.beta = check_positive("beta", beta, allow_inf=True)

    def _check_x(self, x: Tensor) -> Tensor:
        x = as_module_input("x", x, self, ndim=4)
        _, c, h, w = self.templates.shape
        if x.shape[1] != c or x.shape[2] < h or x.shape[3] < w:
            raise ValueError(
                f"x must have shape (B, {c}, H, W) with H >= {h} and W >= {w}, got {tuple(x.shape)}"
            )
        return x

    def _patches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The windows of x as columns, (B, C·h·w, Nz), and the positions (Nz, 2) (row-major)."""
        _, _, h, w = self.templates.shape
        rows, cols = x.shape[2] - h + 1, x.shape[3] - w + 1
        grid = torch.meshgrid(
            torch.arange(rows, device=x.device), torch.arange(cols, device=x.device), indexing="ij"
        )
        return torch.nn.functional.unfold(x, (h, w)), torch.stack(grid, -1).reshape(-1, 2)

    def _energies(self, patches: Tensor, index: Tensor) -> Tensor:
        """‖p − t_k‖² = ‖p‖² − 2 t_k·p + ‖t_k‖² for the columns ``index``: (B, K, n)."""
        p = patches[:, :, index]  # (B, D, n)
        t = self.templates.flatten(1)  # (K, D)
        cross = torch.einsum("kd,bdn->bkn", t, p)
        return p.square().sum(1, keepdim=True) - 2 * cross + t.square().sum(1)[None, :, None]

    def energy_map(self, x: Tensor) -> Tensor:
        """E(x, k, z) at every position: x (B, C, H, W) -> (B, K, H − h + 1, W − w + 1), low =
        the window at z looks like template k. No value checks (a forward pass)."""
        x = self._check_x(x)
        patches, positions = self._patches(x)
        e = self._energies(patches, torch.arange(len(positions), device=x.device))
        _, _, h, w = self.templates.shape
        return e.reshape(*e.shape[:2], x.shape[2] - h + 1, x.shape[3] - w + 1)

    def free_energy(self, x: Tensor, beta: float | None = None) -> LatentFreeEnergy:
        """F_β(x, k) over positions for every label, and the best position ž of each label.

        x: (B, C, H, W). beta: > 0, math.inf for the min (by exhaustive search over the
        positions; its gradient reaches the templates at ž, exact for a discrete set), None
        (default) for the model's own ``beta``. Returns ``LatentFreeEnergy(free_energy (B, K),
        z (B, K, 2))``: z is the int64 (row, col) of the window of lowest energy (the
        posterior mode at finite β), low F = compatible. No value checks: NaN propagates.
        """
        beta = self.beta if beta is None else check_positive("beta", beta, allow_inf=True)
        x = self._check_x(x)
        patches, positions = self._patches(x)
        index = torch.arange(len(positions), device=x.device)  # the candidates: window numbers
        if math.isinf(beta):
            found = exhaustive_search(lambda i: self._energies(patches, i), index)
            return LatentFreeEnergy(found.energy, positions[found.argmin])
        e = self._energies(patches, index)  # (B, K, Nz)
        return LatentFreeEnergy(free_energy(e, beta), positions[e.detach().argmin(-1)])

    def forward(self, x: Tensor) -> Tensor:
        """F_β(x, k) at the model's ``beta`` for every label: x (B, C, H, W) -> (B, K), low =
        label k fits somewhere in x. No value checks (a forward pass): NaN propagates."""
        return self.free_energy(x).free_energy
