"""Input validation shared by every public function: fail early, name the argument.

The library's one input convention (README, "Reliability"):

- Forward passes of energies and losses propagate NaN as torch does: no checks, no host syncs.
- Everything that fits, predicts, evaluates or generates data validates its inputs here: NaN/inf
  and out-of-range values raise a ``ValueError`` that names the user's argument, what was given
  and what was expected.
- Array-likes (numpy arrays, lists, Python numbers) are accepted where tensors are; integer and
  bool inputs are promoted to the default float dtype, so no result is ever truncated.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor


def check_tensor(name: str, value: object, ndim: int | None = None) -> Tensor:
    """Require a Tensor, optionally of a given number of dimensions."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    return value


def _from_array_like(name: str, value: object, what: tuple[str, str]) -> Tensor:
    """A non-tensor ``value`` (list, number, numpy array) as a tensor of its numpy dtype, or a
    ValueError naming ``name``. what: how the messages call the elements (any array-like, then
    one of the wrong dtype), e.g. ("numbers", "real numbers")."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a tensor or an array-like of {what[0]}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged lists
        raise ValueError(f"{name} must be a rectangular array of {what[0]}: {err}") from err
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be a tensor or an array-like of {what[1]}, got "
            f"{type(value).__name__} of dtype {arr.dtype}"
        )
    shape = arr.shape  # np.ascontiguousarray makes a 0-d array 1-d: reshape back below
    contiguous = np.ascontiguousarray(arr)
    if not contiguous.flags.writeable:  # torch warns on read-only memory: give it a copy
        contiguous = contiguous.copy()
    return torch.from_numpy(contiguous).reshape(shape)


def as_float_tensor(
    name: str,
    value: object,
    ndim: int | tuple[int, ...] | None = None,
    finite: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    allow_bool: bool = True,
) -> Tensor:
    """``value`` as a floating tensor: the input convention for data-taking entry points.

    Accepts a Tensor or an array-like (numpy array, nested lists, Python number). Integer and
    bool values, lists and numbers become ``dtype`` (default: torch's default float dtype);
    floating tensors and numpy arrays keep their dtype unless ``dtype`` is given. ``ndim``: the
    required number of dimensions (or a tuple of allowed ones). ``finite``: reject NaN/inf (one
    host sync: call on inputs, never inside a hot loop). ``allow_bool=False``: refuse bools
    (a hyper-parameter such as a mass, where True is a mistake rather than data).
    """
    if not allow_bool and isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a real number or tensor, not a bool: got {value!r}")
    if isinstance(value, Tensor):
        t = value
    else:
        t = _from_array_like(name, value, ("numbers", "real numbers"))
        if not isinstance(value, np.ndarray) and dtype is None:
            dtype = torch.get_default_dtype()  # lists and numbers, as torch.tensor reads them
    if t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if not allow_bool and t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, not bools: got dtype {t.dtype}")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if device is not None:
        t = t.to(device)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{name} must have {expected} dimension(s), got shape {tuple(t.shape)}"
            )
    if finite:
        check_finite(name, t)
    return t


def as_index_tensor(
    name: str,
    value: object,
    ndim: int | tuple[int, ...] | None = None,
    high: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``value`` as an int64 tensor of indices (class labels) in [0, ``high``).

    Accepts a Tensor or an array-like of integers or bools (bools become 0/1). Floating values
    are refused, even integral ones: a float label usually means a target went in the wrong
    place. ``ndim``: the required number of dimensions (or a tuple of allowed ones); ``high``:
    the number of classes (None: only ``>= 0`` is checked). One host sync.
    """
    t = value if isinstance(value, Tensor) else _from_array_like(name, value, ("integers",) * 2)
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must hold integer indices, got dtype {t.dtype}")
    t = t.to(torch.int64)
    if device is not None:
        t = t.to(device)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{name} must have {expected} dimension(s), got shape {tuple(t.shape)}"
            )
    if t.numel() > 0:
        bad = (t < 0) if high is None else (t < 0) | (t >= high)
        if bool(bad.any()):
            interval = ">= 0" if high is None else f"in [0, {high})"
            raise ValueError(
                f"{name} must hold indices {interval}, got {int(bad.sum())} outside "
                f"(min {int(t.min())}, max {int(t.max())})"
            )
    return t


def check_nonempty(name: str, value: Tensor) -> Tensor:
    """Require a batch (B, ...) with B >= 1, as scikit-learn does for queries: an empty batch
    is refused with a ValueError naming ``name`` (no host sync: shapes only)."""
    if value.ndim < 1 or value.shape[0] < 1:
        raise ValueError(
            f"{name} must hold at least one sample: got 0 sample(s), shape {tuple(value.shape)}"
        )
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


def all_finite(value: Tensor) -> bool:
    """Whether ``value`` holds no NaN or inf (a host sync: call on inputs, not in hot loops).

    A sum is finite only if every term is (NaN and ±inf propagate), and it costs a fraction of
    the elementwise test on large inputs; only a sum that overflows needs that test. Integer and
    bool tensors are finite without a test."""
    if not (value.is_floating_point() or value.is_complex()):
        return True
    return bool(torch.isfinite(value.sum())) or bool(torch.isfinite(value).all())


def check_finite(name: str, value: Tensor) -> Tensor:
    """Require no NaN or inf (a host sync: call on inputs, not inside hot loops)."""
    if all_finite(value):
        return value
    n_nan = int(torch.isnan(value).sum())
    n_inf = int(torch.isinf(value).sum())
    raise ValueError(
        f"{name} contains NaN or inf values ({n_nan} NaN, {n_inf} inf in shape "
        f"{tuple(value.shape)}): it must be finite"
    )


def _real(name: str, value: object, expected: str) -> float:
    """A Python float from a real scalar (int, float, numpy scalar, 0-d tensor); bools refused."""
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def check_positive(name: str, value: float, allow_inf: bool = False) -> float:
    """Require a real number > 0 (inf only if ``allow_inf``)."""
    expected = "> 0" if allow_inf else "finite and > 0"
    number = _real(name, value, f"a real number {expected}")
    if not number > 0 or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_real(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Require a finite real number in the interval given by ``low``/``high`` (None: unbounded).

    Returns ``value`` unchanged, so ``self.x = check_real("x", x, 0, 1)`` stores what was given.
    """
    lo = "-inf" if low is None else ("[" if low_inclusive else "(") + f"{low}"
    hi = "inf" if high is None else f"{high}" + ("]" if high_inclusive else ")")
    interval = f"{'(' if low is None else ''}{lo}, {hi}{')' if high is None else ''}"
    expected = f"a finite real number in {interval}"
    number = _real(name, value, expected)
    ok = math.isfinite(number)
    if ok and low is not None:
        ok = number >= low if low_inclusive else number > low
    if ok and high is not None:
        ok = number <= high if high_inclusive else number < high
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Require an integer (Python or numpy; bools refused) in [minimum, maximum]; returns an int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        if minimum is None:
            bounds = f"<= {maximum}"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple) -> object:
    """Require one of a fixed set of options (compared by type and value: 1 is not True)."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
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
        generator.manual_seed(check_int("seed", seed, minimum=0))
    return generator


def check_generator(
    name: str, value: object, device: torch.device | str | None = None
) -> torch.Generator | None:
    """Require None (torch's global RNG) or a ``torch.Generator`` (on ``device``'s type, when
    given: the data generators draw on the CPU); returns it."""
    if value is not None and not isinstance(value, torch.Generator):
        hint = ""
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            hint = f" (for a seed, pass torch.Generator().manual_seed({value}))"
        raise ValueError(f"{name} must be a torch.Generator or None, got {value!r}{hint}")
    if value is not None and device is not None:
        expected = torch.device(device).type
        if value.device.type != expected:
            raise ValueError(
                f"{name} must be a {expected} generator (the draws happen on the {expected}), "
                f"got one on {value.device}"
            )
    return value


def check_int_sequence(
    name: str, value: object, minimum: int | None = 1, allow_empty: bool = True
) -> tuple[int, ...]:
    """Require a sequence (list, tuple, ...) of ints, each >= ``minimum``; returns a tuple.

    Strings, bools and non-integral numbers are refused, naming ``name`` and the bad entry.
    """
    if (
        isinstance(value, (str, bytes))
        or not hasattr(value, "__iter__")
        or isinstance(value, Tensor)
    ):
        raise ValueError(f"{name} must be a sequence of ints, got {value!r}")
    items = tuple(value)
    if not items and not allow_empty:
        raise ValueError(f"{name} must be a non-empty sequence of ints, got {value!r}")
    for i, item in enumerate(items):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise ValueError(f"{name} must hold ints: {name}[{i}] is {item!r} in {value!r}")
        if minimum is not None and item < minimum:
            raise ValueError(
                f"{name} must hold ints >= {minimum}: {name}[{i}] is {item!r} in {value!r}"
            )
    return tuple(int(item) for item in items)


def module_dtype(module: object) -> torch.dtype | None:
    """The dtype of a module's first floating parameter (else buffer): the dtype nn.Module models
    cast their data to. None if it has none, or is not an nn.Module."""
    if not isinstance(module, torch.nn.Module):
        return None
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def as_module_input(
    name: str, value: object, module: torch.nn.Module, ndim: int | tuple[int, ...] | None = None
) -> Tensor:
    """``value`` as the input of ``module``'s forward pass: no value checks, no host sync.

    Array-likes are accepted (and put on the module's device); integer and bool values are
    promoted; floating data are cast to the module's floating dtype (``module_dtype``), so float64
    data into a float32 model is computed in float32. A module without floating tensors keeps a
    floating input's dtype. Casting keeps the autograd graph.
    """
    device = None
    if not isinstance(value, Tensor):
        for tensor in (*module.parameters(), *module.buffers()):
            device = tensor.device
            break
    return as_float_tensor(
        name, value, ndim=ndim, finite=False, dtype=module_dtype(module), device=device
    )


def check_betas(name: str, value: object) -> tuple[float, float]:
    """Require Adam's (β₁, β₂): two finite reals in [0, 1). Returns them as a tuple."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2) in [0, 1), got {value!r}")
    for i, beta in enumerate(value):
        check_real(f"{name}[{i}]", beta, 0.0, 1.0, high_inclusive=False)
    return tuple(value)


def check_shape(name: str, value: object, allow_empty: bool = False) -> tuple[int, ...]:
    """Require a sequence of ints >= 1, non-empty unless ``allow_empty`` (a shape such as
    (1, 28, 28), or hidden-layer widths); returns a tuple."""
    return check_int_sequence(name, value, minimum=1, allow_empty=allow_empty)


def input_gradient(name: str, e: Tensor, x: Tensor, create_graph: bool = False) -> Tensor:
    """∇ₓ Σ e by autograd, for the energies ``e`` that the callable ``name`` returned for the
    states x (a leaf that requires grad). An output with no autograd path to x (detached,
    computed outside torch, e.g. in numpy, or constant in x) raises a ValueError naming ``name``
    instead of autograd's "element 0 of tensors does not require grad". Metadata only: no host
    sync. A flat energy written as 0 * x.sum(1) has the gradient 0, as it should."""
    if e.requires_grad:
        (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph, allow_unused=True)
        if grad is not None:
            return grad
    raise ValueError(
        f"{name} must be differentiable in its input by autograd, got energies with no gradient "
        f"path to x (detached, computed outside torch, e.g. in numpy, or constant in x: a flat "
        f"energy can be written 0 * x.sum(1))"
    )


def per_sample_energies(name: str, e: object, batch: int) -> Tensor:
    """``e``, what the energy callable ``name`` returned for a batch of ``batch`` samples, as
    (batch,) energies: (batch,) as given, (batch, 1) squeezed (a network ending in
    ``Linear(h, 1)``). Anything else, or a tensor that is not floating (an integer or bool
    energy has no gradient and would be truncated), raises a ValueError naming ``name``. Shapes
    and dtypes only: no host sync, the values are not read."""
    if isinstance(e, Tensor):
        if not e.is_floating_point():
            raise ValueError(
                f"{name} must return a floating tensor of energies, shape ({batch},) or "
                f"({batch}, 1), got dtype {e.dtype} (an integer or bool energy has no gradient "
                "and truncates: compute it in floating point)"
            )
        if e.shape == (batch,):
            return e
        if e.shape == (batch, 1):
            return e.squeeze(1)
    got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
    raise ValueError(
        f"{name} must return one value per sample, shape ({batch},) or ({batch}, 1), got {got}"
    )
