"""One-dimensional regression data for predictive uncertainty: the notes' x·sin(x) toy (ch. 42)
and the Mauna Loa CO₂ record (ch. 21), both with a region without data to extrapolate into."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ebm._checks import check_generator, check_int, check_positive, check_real
from ebm._deprecation import renamed_arguments, seed_to_generator

__all__ = ["CO2Split", "mauna_loa_co2", "x_sin_x"]

_CO2_FILE = Path(__file__).with_name("mauna_loa_co2.csv")


@renamed_arguments(seed=("generator", seed_to_generator), noise_std="noise")
def x_sin_x(
    n: int = 20,
    low: float = -5.0,
    high: float = 5.0,
    noise: float = 0.0,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The notes' toy (ch. 42): x ~ U[low, high], y = x·sin(x) (+ N(0, noise²) noise).

    n: an int >= 1; low < high: finite; noise: the std of the Gaussian noise added to y (finite,
    >= 0); generator: the random source (None: torch's global RNG; before 0.2 the default was
    the seed 0: pass ``torch.Generator().manual_seed(0)`` for that data). Old names
    ``noise_std`` and ``seed`` work until 0.3, with a DeprecationWarning.
    Returns x (n, 1) and y (n, 1), float32.

    >>> import torch
    >>> x, y = x_sin_x(5, generator=torch.Generator().manual_seed(0))
    >>> x.shape, torch.equal(y, x * torch.sin(x))  # noise=0: exactly on the curve
    (torch.Size([5, 1]), True)
    """
    check_int("n", n), check_real("low", low), check_real("high", high)
    if not high > low:
        raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
    check_real("noise", noise, 0.0), check_generator("generator", generator, "cpu")
    x = low + (high - low) * torch.rand(n, 1, generator=generator)
    y = x * torch.sin(x) + noise * torch.randn(n, 1, generator=generator)
    return x, y


@dataclass(frozen=True)
class CO2Split:
    """Normalised Mauna Loa CO₂: train before ``split_year``, held-out extrapolation after.

    x_train, x_test: (N, 1) decimal years, centred and scaled by the training mean/std;
    y_train, y_test: (N, 1) CO₂, centred and scaled by the training mean/std.
    ``x_mean``, ``x_std`` (years) and ``y_mean``, ``y_std`` (ppmv) undo the scaling.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    x_mean: float
    x_std: float
    y_mean: float
    y_std: float

    def years(self, x: Tensor) -> Tensor:
        """Normalised x (any shape) -> decimal years, same shape."""
        return x * self.x_std + self.x_mean

    def ppmv(self, y: Tensor) -> Tensor:
        """Normalised y (any shape) -> CO₂ in ppmv, same shape."""
        return y * self.y_std + self.y_mean


def _read_co2() -> tuple[Tensor, Tensor]:
    with _CO2_FILE.open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    years = torch.tensor([float(r["decimal_year"]) for r in rows], dtype=torch.float64)
    co2 = torch.tensor([float(r["co2_ppmv"]) for r in rows], dtype=torch.float64)
    return years, co2


def mauna_loa_co2(split_year: float = 1990.0, every: int = 2) -> CO2Split:
    """Monthly Mauna Loa CO₂, 1958–2001 (Keeling & Whorf, Scripps; see the CSV's header),
    shipped with the package: nothing is downloaded.

    split_year: months before it train, months after it form the extrapolation region.
    every: keep every ``every``-th month (2 gives ≈ 200 training points, as in the notes).
    Both parts are scaled by the training statistics only.
    """
    check_int("every", every)
    check_real("split_year", split_year)
    years, co2 = _read_co2()
    if not years[0] < split_year < years[-1]:
        raise ValueError(
            f"split_year must lie inside the record ({years[0]:.1f}, {years[-1]:.1f}), "
            f"got {split_year!r}"
        )
    years, co2 = years[::every], co2[::every]
    train = years < split_year
    x_mean, x_std = years[train].mean().item(), years[train].std().item()
    y_mean, y_std = co2[train].mean().item(), co2[train].std().item()
    x = ((years - x_mean) / x_std).float().unsqueeze(1)
    y = ((co2 - y_mean) / y_std).float().unsqueeze(1)
    check_positive("x_std", x_std)
    return CO2Split(x[train], y[train], x[~train], y[~train], x_mean, x_std, y_mean, y_std)
