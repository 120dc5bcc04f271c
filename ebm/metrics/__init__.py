"""Metrics: sample quality (MMD, energy distance, mode coverage, Fréchet distance) and
predictive uncertainty (NLL, CRPS, coverage, calibration, ECE, Brier, AUROC)."""

from ebm._lazy import lazy_getattr

_EXPORTS = {
    # two-sample distances (samples.py)
    "mmd": "samples",
    "energy_distance": "samples",
    "mode_coverage": "samples",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
