"""Sharp sample-quality checks for the 2-D toys: where the samples are, not one kernel distance.

An MMD at the median bandwidth looks at the samples through a kernel as wide as the whole toy, so
a sampler that fills the checkerboard's empty squares, or gives the ring's modes unequal weights,
can still score near zero. These functions ask the questions a reader of the figure asks:

- ``checkerboard_occupancy``: how many samples lie inside the board's dark squares, and how they
  are shared among the squares (the data: all of them, 1/8 each);
- ``mode_weights``: the share of each mode of a mixture, and how many samples lie within
  ``n_std`` standard deviations of a mode (the data of an isotropic 2-D Gaussian mixture:
  1 − exp(−n_std²/2), 98.9 % for 3σ);
- ``near_data_fraction``: how many samples have a point of a fresh data draw within ``radius``
  (the data itself: ~1 for a large draw and a radius of a few noise widths).

samples: (N, 2) (``near_data_fraction``: (N, D)), tensors or array-likes; integer inputs are
promoted to float. Results are tensors on the samples' device, so they can stay there until they
are logged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_float_tensor, check_int, check_positive, check_real

__all__ = ["checkerboard_occupancy", "mode_weights", "nearest_distance", "near_data_fraction"]


def _samples(name: str, value, dim: int | None = None) -> Tensor:
    x = as_float_tensor(name, value, ndim=2)
    if len(x) == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {tuple(x.shape)}")
    return x


def checkerboard_occupancy(
    samples, n_cells: int = 4, low: float = -4.0, high: float = 4.0
) -> tuple[Tensor, Tensor]:
    """(fraction inside the dark squares (), share of each dark square (n_dark,)).

    The board is [low, high]² cut into n_cells × n_cells squares; square (i, j) covers
    x₁ ∈ [low + i·w, low + (i+1)·w], x₂ ∈ [low + j·w, low + (j+1)·w] with w = (high − low)/n_cells,
    and is dark when i + j is even, as ``ebm.data.checkerboard`` draws it (n_cells = 4 on
    [−4, 4]²: 8 dark squares). The shares are fractions of ALL samples, listed in the order
    (i, j) = (0, 0), (0, 2), (1, 1), ... (row-major over i), so they sum to the first value.
    Points on a square's edge count as inside (the edges have probability zero).
    """
    x = _samples("samples", samples, dim=2)
    n_cells = check_int("n_cells", n_cells, minimum=1)
    check_real("low", low), check_real("high", high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    width = (high - low) / n_cells
    # cell index per coordinate; the closed right edge belongs to the last cell
    cell = ((x - low) / width).floor().clamp(max=n_cells - 1)
    on_board = ((x >= low) & (x <= high)).all(dim=1)
    i, j = cell[:, 0].long(), cell[:, 1].long()
    dark = on_board & ((i + j) % 2 == 0)
    dark_cells = [(a, b) for a in range(n_cells) for b in range(n_cells) if (a + b) % 2 == 0]
    index = torch.full((n_cells, n_cells), -1, dtype=torch.long, device=x.device)
    for k, (a, b) in enumerate(dark_cells):
        index[a, b] = k
    which = index[i.clamp(0, n_cells - 1), j.clamp(0, n_cells - 1)][dark]
    counts = torch.bincount(which, minlength=len(dark_cells)).to(x.dtype)
    return dark.to(x.dtype).mean(), counts / len(x)


def mode_weights(samples, centers, std: float, n_std: float = 3.0) -> tuple[Tensor, Tensor]:
    """(share of each mode (K,), fraction within n_std·std of its nearest centre ()).

    Every sample is assigned to its nearest centre; a mode's share is the fraction of ALL samples
    assigned to it, so the shares sum to 1 (an equal mixture of K modes: 1/K each).
    samples: (N, D); centers: (K, D); std: the modes' standard deviation.
    """
    x = _samples("samples", samples)
    c = as_float_tensor("centers", centers, ndim=2).to(device=x.device, dtype=x.dtype)
    if c.shape[1] != x.shape[1] or len(c) == 0:
        raise ValueError(
            f"centers must have shape (K, {x.shape[1]}) like samples, got {tuple(c.shape)}"
        )
    check_positive("std", std), check_positive("n_std", n_std)
    dist, nearest = torch.cdist(x, c).min(dim=1)
    shares = torch.bincount(nearest, minlength=len(c)).to(x.dtype) / len(x)
    return shares, (dist <= n_std * std).to(x.dtype).mean()


def nearest_distance(samples, reference, chunk: int = 1024) -> Tensor:
    """Distance from each sample to its nearest point of ``reference``, (N,).

    samples: (N, D); reference: (M, D). Computed in chunks of ``chunk`` samples, so memory stays
    O(chunk·M).
    """
    x = _samples("samples", samples)
    r = _samples("reference", reference).to(device=x.device, dtype=x.dtype)
    if r.shape[1] != x.shape[1]:
        raise ValueError(
            f"reference must have shape (M, {x.shape[1]}) like samples {tuple(x.shape)}, "
            f"got {tuple(r.shape)}"
        )
    chunk = check_int("chunk", chunk, minimum=1)
    return torch.cat([torch.cdist(part, r).min(dim=1).values for part in x.split(chunk)])


def near_data_fraction(samples, reference, radius: float) -> Tensor:
    """Fraction of samples whose nearest point of ``reference`` lies within ``radius``, ().

    reference: (M, D) a fresh draw of the data, large enough that the data's own nearest-neighbour
    distances are well below ``radius`` (e.g. 20 000 points and 3× the data's noise).
    samples: (N, D).
    """
    check_positive("radius", radius)
    d = nearest_distance(samples, reference)
    return (d <= radius).to(d.dtype).mean()
