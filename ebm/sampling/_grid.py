"""Exact draws and log Z for a low-dimensional energy, by evaluating it on a grid of cells.

The box [low, high] (per dimension) is cut into ``cells`` equal intervals per dimension, and E is
read at each cell's centre. ``grid_log_partition`` is the midpoint rule for
log Z = log ∫_box exp(−E(x)) dx; ``grid_sample`` draws from the piecewise-constant density
that is ∝ exp(−E(centre)) on each cell: a cell with probability ∝ exp(−E(centre)), then a
uniform point inside it. No Markov chain, so no mixing or burn-in: the draws are exact for that
piecewise-constant density, which tends to exp(−E) restricted to the box as the cells shrink. They
say what the energy itself puts where, independently of any sampler.

Cost: cells^d evaluations of E and cells^d float64 numbers held at once, so this is for d = 1, 2
(3 at a push): 400² = 160 000 cells is cheap, while 100 cells in 5 dimensions is already 10¹⁰.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    check_generator,
    check_int,
    check_int_sequence,
    check_real,
    per_sample_energies,
)

__all__ = ["grid_log_partition", "grid_sample"]

# torch.multinomial draws from at most 2^24 categories.
_MAX_CELLS = 1 << 24


def _box(low: object, high: object, dim: object) -> tuple[list[float], list[float]]:
    """low and high as per-dimension lists of Python floats, with low < high in each."""

    def as_list(name: str, value: object) -> list[float] | None:
        if getattr(value, "ndim", None) == 0:  # a 0-d tensor or numpy array: a number
            return None
        if isinstance(value, (str, bytes)) or not (
            isinstance(value, (Sequence, Tensor)) or hasattr(value, "__array__")
        ):
            return None
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        if not items:
            raise ValueError(f"{name} must be a real number or a non-empty sequence, got {value!r}")
        return [float(check_real(f"{name}[{i}]", v)) for i, v in enumerate(items)]

    lows, highs = as_list("low", low), as_list("high", high)
    sizes = {len(v) for v in (lows, highs) if v is not None}
    if dim is not None:
        dim = check_int("dim", dim, minimum=1)
        sizes.add(dim)
    if len(sizes) > 1:
        raise ValueError(
            f"low, high and dim disagree on the number of dimensions: low={low!r}, "
            f"high={high!r}, dim={dim!r}"
        )
    if not sizes:
        raise ValueError(
            "dim must be given when low and high are both scalars (the box is [low, high]^dim), "
            f"got dim=None with low={low!r}, high={high!r}"
        )
    d = sizes.pop()
    if lows is None:  # a number (a 0-d tensor or numpy array too)
        lows = [float(check_real("low", low.item() if hasattr(low, "item") else low))] * d
    if highs is None:
        highs = [float(check_real("high", high.item() if hasattr(high, "item") else high))] * d
    for i, (lo, hi) in enumerate(zip(lows, highs)):
        if not lo < hi:
            where = "" if d == 1 else f" in dimension {i}"
            raise ValueError(f"low must be < high{where}, got low={low!r}, high={high!r}")
    return lows, highs


def _where(energy: object, device: object) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype to evaluate ``energy`` in: ``device`` if given, else the
    device of its module's first floating parameter (a module, or a module's bound method such as
    ``model.energy``), else the CPU; that parameter's dtype, else torch's default dtype."""
    owner = energy if isinstance(energy, nn.Module) else getattr(energy, "__self__", None)
    tensors = (*owner.parameters(), *owner.buffers()) if isinstance(owner, nn.Module) else ()
    first = next((t for t in tensors if t.is_floating_point()), None)
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    if device is None:
        return (first.device if first is not None else torch.device("cpu")), dtype
    from ebm.train.devices import resolve_device  # the Trainer's names and availability checks

    return resolve_device(device), dtype


class _Grid:
    """The cell centres of the box, evaluated in chunks; the arguments validated on the way."""

    def __init__(self, energy, low, high, dim, cells, chunk_size, device):
        if not callable(energy):
            raise ValueError(
                f"energy must be callable (B, d) -> (B,) or (B, 1), got {type(energy).__name__}"
            )
        self.low, self.high = _box(low, high, dim)
        self.d = len(self.low)
        if isinstance(cells, (str, bytes)) or not hasattr(cells, "__iter__"):
            self.cells = [check_int("cells", cells, minimum=1)] * self.d
        else:
            self.cells = list(check_int_sequence("cells", cells, minimum=1))
            if len(self.cells) != self.d:
                raise ValueError(
                    f"cells must be an int or {self.d} ints (one per dimension), got {cells!r}"
                )
        self.n_cells = math.prod(self.cells)
        if self.n_cells > _MAX_CELLS:
            raise ValueError(
                f"cells must give at most 2^24 = {_MAX_CELLS} grid cells in all, got "
                f"cells={cells!r} in {self.d} dimensions: {self.n_cells} cells (use fewer)"
            )
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.energy = energy
        self.device, self.dtype = _where(energy, device)
        # Python-float widths and offsets, so a cell centre is low + (i + 1/2)·width computed in
        # the energy's dtype, the same numbers for every d and chunking
        self.width = [(hi - lo) / c for lo, hi, c in zip(self.low, self.high, self.cells)]
        self.centres = [
            lo + (torch.arange(c, dtype=self.dtype, device=self.device) + 0.5) * w
            for lo, w, c in zip(self.low, self.width, self.cells)
        ]

    def points(self, flat: Tensor) -> Tensor:
        """The centres (len(flat), d) of the cells numbered ``flat`` (C order: the first
        coordinate varies slowest, as ``torch.cartesian_prod``)."""
        columns, stride = [], self.n_cells
        for centres, c in zip(self.centres, self.cells):
            stride //= c
            columns.append(centres[torch.div(flat, stride, rounding_mode="floor") % c])
        return torch.stack(columns, 1)

    @torch.no_grad()
    def energies(self) -> Tensor:
        """E at every cell centre, (cells^d,) float64 on the evaluation device."""
        n = self.n_cells
        parts = []
        for flat in torch.arange(n, device=self.device).split(self.chunk_size):
            e = per_sample_energies("energy", self.energy(self.points(flat)), flat.shape[0])
            parts.append(e.detach().to(torch.float64))
        E = torch.cat(parts)
        if torch.isnan(E).any():
            raise ValueError(
                f"energy returned NaN at {int(torch.isnan(E).sum())} of the {n} grid cell "
                "centres: E must be a number (or +inf) everywhere on the box"
            )
        return E

    def log_cell_volume(self) -> float:
        return sum(math.log(w) for w in self.width)


def grid_log_partition(
    energy: Callable[[Tensor], Tensor],
    low: float | Sequence[float],
    high: float | Sequence[float],
    dim: int | None = None,
    cells: int | Sequence[int] = 200,
    chunk_size: int = 16384,
    device: torch.device | str | None = None,
) -> Tensor:
    """log Z = log ∫_box exp(−E(x)) dx by the midpoint rule on a grid of cells^d cells.

    energy: a callable (B, d) -> (B,) (or (B, 1), squeezed), low = likely; an ``nn.Module`` (or a
    module's bound method, such as ``model.energy``) is evaluated in its parameters' dtype and on
    their device, anything else in torch's default dtype. Gradients are not tracked.
    low, high: the box [low, high], each a real number (the same for every dimension) or a
    sequence of d reals; low < high in every dimension. dim: d, needed only when low and high are
    both numbers (else it must agree with their length).
    cells: intervals per dimension, an int >= 1 or a sequence of d of them (at most 2^24 cells
    in all). Cost: cells^d energy evaluations, so this suits d = 1 or 2 (3 at most).
    chunk_size: at most this many points per call of ``energy`` (bounds memory). For an energy
    made of elementwise operations the result does not depend on it; a network's matrix products
    can differ in the last bits between batch sizes.
    device: where to evaluate: "cpu", "cuda", "cuda:N", "mps", "auto" or a ``torch.device``,
    checked to be available as the Trainer's is (None: the device of the energy module's
    parameters, else the CPU).

    The sum is accumulated in float64 (a logsumexp of −E at the cells' centres plus the log of a
    cell's volume). Error of the midpoint rule, for a smooth f = exp(−E): at most
    (volume/24)·Σ_k width_k²·max|∂²f/∂x_k²| on Z (relative error O(width²)), plus the mass
    exp(−E) puts outside the box, which is ignored: choose the box to hold it.

    Returns a 0-d float64 tensor on the evaluation device: +inf if E is −inf somewhere, −inf if
    E is +inf everywhere. A ValueError names ``energy`` if it returns NaN.

    >>> import math, torch
    >>> gauss = lambda x: 0.5 * (x**2).sum(1)  # Z = 2π in 2-D
    >>> log_z = grid_log_partition(gauss, -8.0, 8.0, dim=2, cells=200)
    >>> bool(abs(log_z - math.log(2 * math.pi)) < 1e-3), log_z.dtype
    (True, torch.float64)
    """
    grid = _Grid(energy, low, high, dim, cells, chunk_size, device)
    return torch.logsumexp(-grid.energies(), 0) + grid.log_cell_volume()


def grid_sample(
    energy: Callable[[Tensor], Tensor],
    n: int,
    low: float | Sequence[float],
    high: float | Sequence[float],
    dim: int | None = None,
    cells: int | Sequence[int] = 200,
    chunk_size: int = 16384,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """n exact draws (n, d) from p ∝ exp(−E) on the box, E read at the centres of a grid of cells.

    The density sampled is piecewise constant: on each of the cells^d cells it is ∝ exp(−E) at the
    cell's centre, so a cell is drawn with probability ∝ exp(−E(centre)) (a softmax of −E in
    float64, then ``torch.multinomial``), then a uniform point inside it. No Markov chain: the
    draws are independent and exact for that density, which approaches exp(−E) restricted to the
    box as the cells shrink (mass outside the box is ignored).

    energy: a callable (B, d) -> (B,) (or (B, 1), squeezed), low = likely; an ``nn.Module`` (or a
    module's bound method, such as ``model.energy``) is evaluated in its parameters' dtype and on
    their device, anything else in torch's default dtype. Gradients are not tracked.
    n: the number of draws, an int >= 1.
    low, high: the box [low, high], each a real number (the same for every dimension) or a
    sequence of d reals; low < high in every dimension. dim: d, needed only when low and high are
    both numbers (else it must agree with their length).
    cells: intervals per dimension, an int >= 1 or a sequence of d of them (at most 2^24 cells
    in all). Cost: cells^d energy evaluations and cells^d float64 probabilities in memory, so this
    suits d = 1 or 2 (3 at most).
    chunk_size: at most this many points per call of ``energy`` (bounds memory); see
    ``grid_log_partition``.
    device: where to evaluate: "cpu", "cuda", "cuda:N", "mps", "auto" or a ``torch.device``,
    checked to be available as the Trainer's is (None: the device of the energy module's
    parameters, else the CPU).
    generator: the source of the draws, on the evaluation device (None: torch's global RNG). The
    cells are drawn first (one ``torch.multinomial`` call), then the points inside them (one
    ``torch.rand`` of shape (n, d)).

    Returns (n, d) draws in the evaluation dtype, on the evaluation device. A ValueError names
    ``energy`` if it returns NaN or −inf (no distribution), or +inf on every cell (no mass).

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> two_wells = lambda x: ((x**2 - 1) ** 2 / 0.1).sum(1)  # modes near ±1 in 1-D
    >>> x = grid_sample(two_wells, 4000, -2.0, 2.0, dim=1, cells=400, generator=g)
    >>> x.shape, bool(abs((x > 0).double().mean() - 0.5) < 0.05)
    (torch.Size([4000, 1]), True)
    """
    grid = _Grid(energy, low, high, dim, cells, chunk_size, device)
    n = check_int("n", n, minimum=1)
    check_generator("generator", generator, grid.device)
    E = grid.energies()
    if torch.isneginf(E).any():
        raise ValueError(
            "energy returned -inf on the grid (infinite mass at a point): there is no "
            "distribution to draw from"
        )
    if torch.isposinf(E).all():
        raise ValueError(
            "energy returned +inf at every grid cell centre (no mass on the box): there is "
            "nothing to draw from"
        )
    cell = torch.multinomial(torch.softmax(-E, 0), n, replacement=True, generator=generator)
    jitter = torch.rand(n, grid.d, generator=generator, dtype=grid.dtype, device=grid.device)
    if len(set(grid.width)) == 1:
        return grid.points(cell) + (jitter - 0.5) * grid.width[0]
    width = torch.tensor(grid.width, dtype=grid.dtype, device=grid.device)
    return grid.points(cell) + (jitter - 0.5) * width
