"""Input validation shared by every public function: fail early, name the argument."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_tensor(name: str, value: object, ndim: int | None = None) -> Tensor:
    """Require a Tensor, optionally of a given number of dimensions."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    return value


def check_same_shape(**tensors: Tensor) -> None:
    """Require equal shapes, with no broadcasting: ``check_same_shape(p=p, n=n)``."""
    (first_name, first), *rest = tensors.items()
    for name, t in rest:
        if t.shape != first.shape:
            raise ValueError(
                f"{name} must have the same shape as {first_name}: got {name} "
                f"{tuple(t.shape)} and {first_name} {tuple(first.shape)}"
            )


def check_finite(name: str, value: Tensor) -> Tensor:
    """Require no NaN or inf (one host sync: call on inputs, not inside hot loops)."""
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return value


def check_positive(name: str, value: float, allow_inf: bool = False) -> float:
    """Require a real number > 0 (inf only if ``allow_inf``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not value > 0 or (math.isinf(value) and not allow_inf) or math.isnan(value):
        expected = "> 0" if allow_inf else "finite and > 0"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple) -> object:
    """Require one of a fixed set of options."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A private generator: seeded when ``seed`` is given, otherwise drawn from fresh entropy.

    Library code uses this instead of reseeding the global RNG.
    """
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator
