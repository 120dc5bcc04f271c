"""What the estimators share: scikit-learn's parameter protocol (``get_params``/``set_params``,
so ``sklearn.base.clone`` works, and a ``__repr__`` of the non-default parameters), and, for the
closed-form ones (PCA, KMeans, GaussianMixture), input checks, the not-fitted error, moving
queries onto the fitted model's device and dtype, and an exact rescaling that keeps their
arithmetic in range whatever the data's magnitude."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import Tensor

from ebm._checks import all_finite, as_float_tensor, check_finite, check_int, check_nonempty


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute (ending in ``_``) was needed before ``fit`` was called."""


class ParamsMixin:
    """scikit-learn's parameter protocol, read from the ``__init__`` signature as sklearn does.

    A subclass's ``__init__`` stores every argument unchanged under its own name (it may
    validate, but never converts what it stores), so ``sklearn.base.clone(est)`` builds an
    unfitted copy with equal parameters. ``fit`` validates them (again), so ``set_params``
    cannot slip a bad value past the checks.
    """

    _estimator_type: str | None = None  # scikit-learn's: "clusterer", "density_estimator", ...

    def __sklearn_tags__(self):
        """scikit-learn's tags (read by its pipelines and model selection, sklearn >= 1.6):
        the estimator type, unsupervised (no target needed), a transformer if it transforms."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags() if hasattr(self, "transform") else None,
        )

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameters by name, sorted (``*args`` is not allowed, as in sklearn)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind is p.VAR_KEYWORD:
                continue
            if p.kind is p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ must not take *{p.name}")
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters as ``{name: value}``, as stored by ``__init__`` (or
        ``set_params``). deep: also the parameters of parameters that are estimators themselves,
        as ``"<name>__<param>"`` (scikit-learn's convention)."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> ParamsMixin:
        """Set constructor parameters by name (``"<name>__<param>"`` reaches into a parameter that
        is an estimator). Returns self. Unknown names raise a ValueError naming them and the
        valid ones; values are validated by the next ``fit`` (fitted attributes are kept until
        then, as in scikit-learn)."""
        if not params:
            return self
        valid = self._get_param_names()
        unknown = [key for key in params if key.partition("__")[0] not in valid]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))}: invalid parameter name(s) for "
                f"{type(self).__name__}; valid parameters are {valid}"
            )
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ValueError(
                    f"{name} ({type(inner).__name__}) has no parameters to set: "
                    f"{sorted(sub_params)}"
                )
            inner.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        """``Class(name=value, ...)`` with the parameters that differ from their defaults."""
        signature = inspect.signature(type(self).__init__)
        shown = []
        names = set(self._get_param_names())
        for name in (n for n in signature.parameters if n in names):  # the signature's order
            value = getattr(self, name, None)
            default = signature.parameters[name].default
            if not _same_default(value, default):
                shown.append(f"{name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _same_default(value: object, default: object) -> bool:
    """Whether ``value`` is the parameter's default (arrays and tensors never are)."""
    if value is default:
        return True
    plain = (bool, int, float, str, tuple, type(None))
    if default is inspect.Parameter.empty or not isinstance(value, plain):
        return False
    return type(value) is type(default) and value == default


def _short_repr(value: object) -> str:
    if hasattr(value, "get_params"):
        return repr(value)
    if isinstance(value, Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a numpy array
        return f"array(shape={tuple(value.shape)}, dtype={value.dtype})"
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_data(name: str, Y: object, min_samples: int = 1, what: str = "") -> Tensor:
    """Require finite (N, D) data with N >= ``min_samples``: a tensor or array-like, integer and
    bool values promoted to the default float dtype, floating tensors kept as they are.

    ``what`` names the reason for the minimum in the message, e.g. "n_clusters=8".
    """
    Y = as_float_tensor(name, Y, ndim=2, finite=False)
    if Y.shape[0] < min_samples or Y.shape[1] < 1:
        reason = f" (needed by {what})" if what else ""
        raise ValueError(
            f"{name} must have shape (N, D) with N >= {min_samples}{reason} and D >= 1, "
            f"got {tuple(Y.shape)}"
        )
    check_finite(name, Y)
    return Y


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Require an int >= ``minimum`` (bools are rejected); see ``ebm._checks.check_int``."""
    return check_int(name, value, minimum=minimum)


def check_fitted(estimator: object, attribute: str) -> Tensor:
    """Return the fitted ``attribute`` or raise NotFittedError naming the estimator."""
    value = getattr(estimator, attribute, None)
    if value is None:
        name = type(estimator).__name__
        raise NotFittedError(f"this {name} is not fitted yet: call {name}.fit(Y) first")
    return value


def as_query(name: str, Y: object, reference: Tensor) -> Tensor:
    """Validate a query batch (B, D) against a fitted tensor ``reference`` (..., D) and move it to
    the reference's device and dtype, so a model fitted on one device answers queries from any.

    Y: a tensor or array-like with B >= 1 rows (an empty batch is refused, as in scikit-learn);
    it must be finite (a NaN row has no answer: ValueError naming ``name``), and stay finite in
    the fitted dtype (float64 values beyond float32's range are refused rather than turned into
    inf).
    """
    Y = check_nonempty(name, as_float_tensor(name, Y, ndim=2, finite=False))
    if Y.shape[1] != reference.shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, {reference.shape[-1]}) like the data seen in fit, "
            f"got {tuple(Y.shape)}"
        )
    check_finite(name, Y)
    moved = Y.to(device=reference.device, dtype=reference.dtype)
    if moved.dtype != Y.dtype and not all_finite(moved):
        raise ValueError(
            f"{name} holds values beyond the range of the fitted dtype {reference.dtype} "
            f"(largest |value| {float(Y.abs().max()):.3g}): rescale it or fit in float64"
        )
    return moved


def power_of_two_scale(X: Tensor) -> float:
    """A power of two s with max|X| / s in [0.5, 1): dividing by s is exact (no rounding), so an
    estimator can work at unit scale, where squares neither overflow (data at 1e30) nor
    underflow (data at 1e-30), and scale its results back exactly. s and 1/s are normal numbers
    of X's dtype (clamped at its extremes); 1 for all-zero X."""
    peak = float(X.abs().amax()) if X.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return 1.0
    finfo = torch.finfo(X.dtype)
    low, high = math.frexp(finfo.tiny)[1] + 1, math.frexp(finfo.max)[1] - 2
    return math.ldexp(1.0, min(max(math.frexp(peak)[1], low), high))


def check_sample_weight(sample_weight: object, n: int, reference: Tensor) -> Tensor | None:
    """Validate per-sample weights (N,) for data of N rows: finite, >= 0, not all zero; None
    stays None. Returns them in ``reference``'s dtype and on its device (integers promoted)."""
    if sample_weight is None:
        return None
    w = as_float_tensor("sample_weight", sample_weight, ndim=1, finite=False)
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must have shape (N,) = ({n},), one weight per row of the data, got "
            f"{tuple(w.shape)}"
        )
    check_finite("sample_weight", w)
    if bool((w < 0).any()):
        raise ValueError(
            f"sample_weight must be >= 0, got {int((w < 0).sum())} negative weight(s) "
            f"(min {float(w.min()):.3g})"
        )
    if not bool((w > 0).any()):
        raise ValueError("sample_weight must not be all zero: no sample would count")
    moved = w.to(device=reference.device, dtype=reference.dtype)
    if not torch.isfinite(moved).all():
        raise ValueError(
            f"sample_weight holds values beyond the range of the data's dtype {reference.dtype} "
            f"(largest {float(w.max()):.3g}): rescale it"
        )
    return moved
