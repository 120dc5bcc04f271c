"""The vocabulary of the bad-input walker: argument specs, their bad values, registry entries.

A spec says what an argument is (a data tensor, a real in an interval, a count, an option ...);
it lists the kinds of mistake a user can make with it, each with a hypothesis strategy that
turns the argument's valid value into a bad one, and the documented outcome:

- ``RAISE``: a ``ValueError`` (or a subclass) whose message names the argument;
- ``PROPAGATE``: no error (NaN given to a forward pass flows through, as torch computes it);
- ``ERROR``: some error, never a result (an out-of-range label in a forward pass: checked on the
  CPU, caught by torch's kernels on accelerators).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

NAN, INF = math.nan, math.inf
RAISE, PROPAGATE, ERROR = "raise", "propagate", "error"


@dataclass(frozen=True)
class Bad:
    """One kind of mistake: ``strategy(valid)`` draws bad values; ``examples`` caps the draws."""

    strategy: Callable[[Any], Any]
    expect: str = RAISE
    examples: int = 3


def _just(value: Any) -> Bad:
    return Bad(lambda valid: st.just(value), RAISE, 1)


def _floats(low: float, high: float, **kw: Any):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, **kw)


# ---- tensors ----------------------------------------------------------------------------------


def _put(x: torch.Tensor, index: int, value: float) -> torch.Tensor:
    out = x.detach().clone()
    out.view(-1)[index] = value
    return out


def _nonfinite(x: torch.Tensor):
    """One element (at a drawn position) set to NaN, +inf or -inf."""
    where = st.integers(0, max(x.numel() - 1, 0))
    return st.tuples(where, st.sampled_from([NAN, INF, -INF])).map(lambda iv: _put(x, *iv))


def _wrong_ndim(x: torch.Tensor, allowed: tuple[int, ...] | None):
    """x with one or two trailing dimensions added, or its last one (or two, or all) dropped,
    keeping only numbers of dimensions outside ``allowed`` (default: x's own)."""
    allowed = (x.ndim,) if allowed is None else allowed
    x = x.detach()
    shapes = [
        x.unsqueeze(-1).expand(*x.shape, 2).clone(),
        x.unsqueeze(-1).unsqueeze(-1).clone(),
        x.select(-1, 0).clone() if x.ndim >= 1 else None,
        x.select(-1, 0).select(-1, 0).clone() if x.ndim >= 2 else None,
        x.reshape(-1)[0].clone() if x.ndim >= 1 else None,
    ]
    return st.sampled_from([t for t in shapes if t is not None and t.ndim not in allowed])


def _trailing(x: torch.Tensor):
    """The last dimension one to three longer, or one or two shorter (never empty)."""
    size = x.shape[-1]

    def resize(d: int) -> torch.Tensor:
        if d < 0:
            return x.detach()[..., : size + d].clone()
        pad = x.detach()[..., :1].expand(*x.shape[:-1], d)
        return torch.cat([x.detach(), pad], dim=-1)

    return st.sampled_from([d for d in (-2, -1, 1, 2, 3) if size + d >= 1]).map(resize)


@dataclass(frozen=True)
class Spec:
    """What an argument is. ``bad(entry_kind)``: {kind: Bad}."""

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        raise NotImplementedError


@dataclass(frozen=True)
class Data(Spec):
    """A data tensor, usually (B, ...).

    finite: NaN/inf must raise (None: per the entry: "validates" raises, "forward" propagates).
    ndim: a wrong number of dimensions must raise (a tuple: the allowed numbers; False: any).
    empty: an empty first dimension must raise. trailing: a wrong last size (against the model
    or another argument) must raise. promote: numpy arrays, lists, int and bool tensors give the
    float tensor's result. rows: the dimension of independent rows (True: 0; False: none), for
    the NaN-row test of forward passes. given: () -> a valid value when the valid call omits it.
    """

    finite: bool | None = None
    ndim: bool | tuple[int, ...] = True
    empty: bool = True
    trailing: bool = False
    promote: bool = True
    rows: bool | int = True
    given: Callable[[], torch.Tensor] | None = None

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        finite = entry_kind == "validates" if self.finite is None else self.finite
        kinds = {"nonfinite": Bad(_nonfinite, RAISE if finite else PROPAGATE, 6)}
        if self.ndim is not False:
            allowed = None if self.ndim is True else self.ndim
            kinds["ndim"] = Bad(lambda x: _wrong_ndim(x, allowed), RAISE, 4)
        if self.empty:
            kinds["empty"] = Bad(lambda x: st.just(x.detach()[:0].clone()), RAISE, 1)
        if self.trailing:
            kinds["trailing"] = Bad(_trailing, RAISE, 4)
        return kinds

    @property
    def row_dim(self) -> int | None:
        return None if self.rows is False else (0 if self.rows is True else self.rows)


@dataclass(frozen=True)
class Labels(Spec):
    """Integer labels (B,) in [0, n_classes)."""

    n_classes: int
    ndim: bool = True
    empty: bool = True

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        def out_of_range(y: torch.Tensor):
            where = st.integers(0, y.numel() - 1)
            return st.tuples(where, st.sampled_from([-1, self.n_classes])).map(
                lambda iv: _put(y, *iv)
            )

        expect = RAISE if entry_kind == "validates" else ERROR
        kinds = {"out_of_range": Bad(out_of_range, expect, 4)}
        if self.ndim:
            kinds["ndim"] = Bad(lambda y: _wrong_ndim(y, None), RAISE, 3)
        if self.empty:
            kinds["empty"] = Bad(lambda y: st.just(y.detach()[:0].clone()), RAISE, 1)
        return kinds


# ---- numbers and options ----------------------------------------------------------------------


@dataclass(frozen=True)
class Real(Spec):
    """A real hyper-parameter in an interval (None: unbounded); inf: +inf is a valid value."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    inf: bool = False

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        kinds = {"nan": _just(NAN), "-inf": _just(-INF), "str": _just("1.0"), "bool": _just(True)}
        if not self.inf:
            kinds["inf"] = _just(INF)
        low, high = self.low, self.high
        if low is not None:
            if low > 0 or (low == 0 and not self.low_inclusive):
                kinds["zero"] = _just(0.0)
            if low >= 0:
                kinds["negative"] = Bad(lambda v: _floats(-1e6, -1e-6), RAISE, 3)
            if low != 0:
                below = _floats(low - 1e3, low, exclude_max=self.low_inclusive).filter(bool)
                kinds["below"] = Bad(lambda v: below, RAISE, 3)
        if high is not None:
            above = _floats(high, high + 1e3, exclude_min=self.high_inclusive)
            kinds["above"] = Bad(lambda v: above, RAISE, 3)
        return kinds


@dataclass(frozen=True)
class Int(Spec):
    """An integer hyper-parameter in [minimum, maximum] (None: unbounded)."""

    minimum: int | None = 1
    maximum: int | None = None

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        fractional = _floats(0.01, 99.99).filter(lambda v: v != int(v))
        kinds = {
            "fractional": Bad(lambda v: fractional, RAISE, 3),
            "nan": _just(NAN),
            "str": _just("3"),
            "bool": _just(True),
        }
        lo, hi = self.minimum, self.maximum
        if lo is not None:
            if lo >= 1:
                kinds["zero"] = _just(0)
            if lo >= 0:
                kinds["negative"] = Bad(lambda v: st.integers(-1000, -1), RAISE, 3)
            if lo > 1 or lo < 0:
                below = st.integers(lo - 100, lo - 1).filter(bool)
                kinds["below"] = Bad(lambda v: below, RAISE, 3)
        if hi is not None:
            kinds["above"] = Bad(lambda v: st.integers(hi + 1, hi + 100), RAISE, 3)
        return kinds


@dataclass(frozen=True)
class Choice(Spec):
    """One of a fixed set of options (strings, or flags such as True/False/"auto")."""

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        return {"unknown": _just("no-such-option"), "type": _just(7)}


@dataclass(frozen=True)
class Interval(Spec):
    """A (low, high) pair of reals: plot limits (any order, finite), clamps (ordered: low < high;
    inf: an infinite end means "unbounded on that side")."""

    ordered: bool = False
    inf: bool = False

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        def pairs(make):
            return lambda valid: st.sampled_from(make(float(valid[0]), float(valid[1])))

        def nonfinite(lo, hi):
            ends = [(NAN, hi), (lo, NAN)]
            return ends if self.inf else [*ends, (-INF, hi), (lo, INF)]

        kinds = {
            "nonfinite": Bad(pairs(nonfinite), RAISE, 4),
            "length": Bad(pairs(lambda lo, hi: [(lo,), (lo, hi, hi + 1)]), RAISE, 2),
            "str": _just("0, 1"),
        }
        if self.ordered:
            kinds["reversed"] = Bad(pairs(lambda lo, hi: [(hi, lo), (lo, lo)]), RAISE, 2)
        return kinds


@dataclass(frozen=True)
class Reals(Spec):
    """A fixed-length tuple of finite reals in [low, high] (weights, Adam's betas)."""

    low: float | None = None
    high: float | None = None
    high_inclusive: bool = True

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        def replace(valid, values):
            good = [float(v) for v in valid]

            def put(iv: tuple[int, float]) -> tuple:
                out = list(good)
                out[iv[0]] = iv[1]
                return tuple(out)

            return st.tuples(st.integers(0, len(good) - 1), values).map(put)

        def lengths(valid):
            good = tuple(float(v) for v in valid)
            return st.sampled_from([good[:-1], (*good, good[-1])])

        kinds = {
            "nonfinite": Bad(lambda v: replace(v, st.sampled_from([NAN, INF, -INF])), RAISE, 4),
            "length": Bad(lengths, RAISE, 2),
            "str": _just("0.5"),
        }
        if self.low is not None:
            below = _floats(self.low - 10, self.low, exclude_max=True)
            kinds["below"] = Bad(lambda v: replace(v, below), RAISE, 2)
        if self.high is not None:
            above = _floats(self.high, self.high + 10, exclude_min=self.high_inclusive)
            kinds["above"] = Bad(lambda v: replace(v, above), RAISE, 2)
        return kinds


@dataclass(frozen=True)
class Sizes(Spec):
    """A sequence of positive ints (layer widths, shapes). empty_ok: () is valid."""

    empty_ok: bool = False

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        def last(valid, item):
            good = list(valid) or [2]
            return (*good[:-1], item)

        kinds = {
            "zero": Bad(lambda v: st.just(last(v, 0)), RAISE, 1),
            "negative": Bad(lambda v: st.integers(-100, -1).map(lambda i: last(v, i)), RAISE, 2),
            "fractional": Bad(lambda v: st.just(last(v, 2.5)), RAISE, 1),
            "bool": Bad(lambda v: st.just(last(v, True)), RAISE, 1),
            "str": _just("8"),
        }
        if not self.empty_ok:
            kinds["empty"] = _just(())
        return kinds


@dataclass(frozen=True)
class Fn(Spec):
    """A callable (an energy, a vector field, a factory): a non-callable must raise."""

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        return {"not_callable": Bad(lambda v: st.sampled_from([3, "energy"]), RAISE, 2)}


@dataclass(frozen=True)
class Module(Spec):
    """An ``nn.Module`` (a network, a model): anything else must raise."""

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        return {"not_module": Bad(lambda v: st.sampled_from([3, "net"]), RAISE, 2)}


@dataclass(frozen=True)
class Skip(Spec):
    """Not walked, with the reason (flags, random sources, paths, free-form values)."""

    reason: str

    def bad(self, entry_kind: str) -> dict[str, Bad]:
        return {}


def default_spec(param: inspect.Parameter) -> Spec | None:
    """What the annotation alone says, or None (then the registry must say it)."""
    annotation = param.annotation if isinstance(param.annotation, str) else str(param.annotation)
    if "Generator" in annotation:
        return Skip("a random source")
    if annotation in ("bool", "bool | None"):
        return Skip("a flag")
    if param.name == "seed":
        return Int(0)
    if annotation in ("int", "int | None"):
        return Int(1)
    if annotation == "Tensor":
        return Data()
    if annotation.startswith("Callable"):
        return Fn()
    if annotation == "nn.Module":
        return Module()
    return None


# ---- registry entries -------------------------------------------------------------------------


@dataclass
class Entry:
    """How to call one public name validly, and what its arguments are.

    kind: "validates" (fit/predict/evaluate/generate, hyper-parameters: bad input -> ValueError
    naming the argument) or "forward" (forward passes of energies and losses: NaN propagates, no
    host sync; shapes and hyper-parameters are still checked).
    make: () -> (callable, valid keyword arguments); called afresh for every example, so it must
    be cheap and deterministic (fixed generators, never the global RNG's state).
    args: specs overriding ``default_spec``; every named parameter needs one.
    out: result -> the tensor whose rows follow the input rows (forward entries; default: the
    result, or its first element).
    rows: the rows of the data stay independent through this call (forward entries).
    nosync: keyword overrides for the no-host-sync check (``check_target=False``: a documented
    CPU-only value check). sync_ok: why a host sync is part of this forward pass's contract.
    """

    kind: str
    make: Callable[[], tuple[Callable, dict]]
    args: dict[str, Spec] = field(default_factory=dict)
    out: Callable[[Any], torch.Tensor] | None = None
    rows: bool = True
    nosync: dict[str, Any] = field(default_factory=dict)
    sync_ok: str = ""


def V(make, **args: Spec) -> Entry:
    """An entry that validates (fit, predict, evaluate, generate, hyper-parameters)."""
    return Entry("validates", make, args)


def Fw(make, *, out=None, rows=True, nosync=None, sync_ok="", **args: Spec) -> Entry:
    """A forward pass of an energy or a loss."""
    return Entry("forward", make, args, out, rows, nosync or {}, sync_ok)


# ---- deterministic building blocks for the factories ------------------------------------------


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed))


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=gen(seed))


def det(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Overwrite every parameter from a fixed generator (the global RNG's draws are not ours)."""
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def net(
    *sizes: int, seed: int = 0, act: type[torch.nn.Module] = torch.nn.Tanh
) -> torch.nn.Sequential:
    """A small deterministic MLP: Linear layers with ``act`` between them."""
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return det(torch.nn.Sequential(*layers), seed)
