"""Bayesian predictors behind one ``Prediction`` interface. Classes load lazily."""

from ebm._lazy import lazy_getattr

_EXPORTS: dict[str, str] = {}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
