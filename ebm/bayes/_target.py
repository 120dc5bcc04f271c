"""The regression target's scale, shared by GPRegressor, SVIRegressor and DeepEnsemble: the root
mean square their scale checks read, and scikit-learn's ``normalize_y`` standardisation with the
maps that take a prediction on the standardised target back to y's units.

Every statistic is computed at unit scale (y divided by its largest |value| per output element),
so a y near the dtype's largest or smallest numbers gives finite statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_choice


def check_normalize_y(value: object) -> bool:
    """The ``normalize_y`` flag: True or False (a ValueError naming it otherwise)."""
    return bool(check_choice("normalize_y", value, (False, True)))


def _peak(y: Tensor) -> Tensor:
    """Largest |y| per output element (over the first axis), 1 where it is 0."""
    peak = y.abs().amax(0)
    return torch.where(peak > 0, peak, torch.ones_like(peak))


def root_mean_square(y: Tensor) -> Tensor:
    """y: (N, ...) -> (...) root mean square of each output element over the N rows, computed at
    unit scale (no overflow for huge y, no underflow for tiny y)."""
    peak = _peak(y)
    return peak * (y / peak).square().mean(0).sqrt()


def standardize(y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """scikit-learn's ``normalize_y``: y (N, ...) -> ((y − mean) / std, mean, std), the mean and
    the population std (numpy's ddof=0, as scikit-learn) of each output element over the N rows,
    each of shape y.shape[1:].

    A constant output element (all N values equal, N = 1 included) has a zero std, taken as 1
    (scikit-learn's ``_handle_zeros_in_scale``): its standardised values are y − mean = 0. Unlike
    scikit-learn's absolute 10·eps threshold, any spread counts, so a y of scale 1e-20 is
    standardised too. A std whose square overflows y's dtype (float32 y ~ 1e20: the predicted
    variances could not be represented) raises a ValueError naming ``y`` (advising float64
    unless y is float64 already).
    """
    peak = _peak(y)
    unit = y / peak  # (N, ...) in [-1, 1]
    mean = unit.mean(0)
    std = (unit - mean).square().mean(0).sqrt()
    constant = (y == y[:1]).all(0)
    std = torch.where(constant, 1.0 / peak, std)  # y's std of a constant element: 1
    if not bool(torch.isfinite((std * peak).square()).all()):  # a variance in y's units
        advice = "rescale y" if y.dtype == torch.float64 else "rescale y, or fit in float64"
        raise ValueError(
            f"y has a std of {float((std * peak).max()):.3g}, whose square (the scale of every "
            f"predicted variance) is beyond the range of {y.dtype}: {advice}"
        )
    return (unit - mean) / std, mean * peak, std * peak


def check_target_scale(y: Tensor, bounds: tuple[float, float], why: str) -> None:
    """Refuse (a ValueError naming ``y``) a target whose root mean square, per output element, is
    outside ``bounds`` (low, high); all-zero output elements are skipped (nothing to scale).
    ``why`` says what goes wrong outside them, for the message."""
    rms = root_mean_square(y).flatten()
    rms = rms[rms > 0]
    if rms.numel() == 0:
        return
    smallest, largest = float(rms.min()), float(rms.max())
    low, high = bounds
    if smallest < low or largest > high:
        got = smallest if smallest < low else largest
        raise ValueError(
            f"y must have a root mean square within {low:g}..{high:g} with normalize_y=False "
            f"({why}), got {got:.3g}: pass normalize_y=True (the model is then fitted on the "
            "standardised y, (y - mean) / std, and predicts in y's units), or rescale y"
        )
