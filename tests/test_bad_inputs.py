"""Walk every public name of ``ebm`` with bad inputs and assert the documented outcome.

The input convention (issue 12; STYLE.md "Inputs"):

- whatever fits, predicts, evaluates or generates data, and every hyper-parameter, rejects NaN,
  inf, wrong shapes and out-of-range values with a ``ValueError`` naming the user's argument;
- forward passes of energies and losses let NaN through as torch computes it (a NaN row gives a
  NaN in that row's output and nowhere else), without checks or host synchronisation;
- numpy arrays and lists give the float tensor's result; int and bool tensors are promoted, never
  truncated.

The public surface is enumerated (``_public_api.py``); each name has a registry entry (a valid
call and a spec per argument, ``_registry_*.py``) or a written exemption. A new public name, or a
new argument, without one fails ``test_every_public_name_is_walked_or_exempt`` /
``test_every_argument_has_a_spec`` with a message saying what to add. Hypothesis draws the bad
values (positions, sizes, magnitudes) with a fixed derandomised profile and no database.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from typing import Any, NamedTuple

import pytest
import torch
from _bad_values import (
    ERROR,
    PROPAGATE,
    RAISE,
    Choice,
    Data,
    Fn,
    Int,
    Module,
    Real,
    Spec,
    default_spec,
)
from _public_api import public_callables, top_level_submodules, walked_parameters
from _registry_core import CORE
from _registry_misc import EXEMPT, MISC
from _registry_models import MODELS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode

import ebm

settings.register_profile(
    "ebm_bad_inputs",
    deadline=None,
    derandomize=True,  # the same examples on every run and machine: CI is deterministic
    database=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the bad values are small already
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile("ebm_bad_inputs")

REGISTRY = {**CORE, **MODELS, **MISC}
TARGETS = public_callables()

# Families exempt by rule: what they are is why.
TRAINER_HOOKS = frozenset(
    {"training_step", "validation_step", "load_state_dict", "set_extra_state"}
)


def rule_exemption(key: str, target: Any) -> str | None:
    """Why a whole family of names needs no entry, or None."""
    if inspect.isclass(target) and issubclass(target, BaseException):
        return "an exception type: raised, never called with data"
    if inspect.isclass(target) and issubclass(target, tuple) and hasattr(target, "_fields"):
        return "a NamedTuple record of results: holds what it is given"
    if not isinstance(target, tuple) and not callable(target):
        return "a constant (a colour map name, a style dict): nothing to call"
    if isinstance(target, tuple) and (target[1] in TRAINER_HOOKS or target[1].startswith("on_")):
        return "the Trainer contract: called by Trainer.fit on batches and states it produces"
    if not walked_parameters(target):
        return "takes no arguments"
    return None


def arg_specs(key: str) -> dict[str, Spec | None]:
    """Every named parameter's spec (None: missing), plus specs for ``**kwargs`` pass-throughs."""
    entry = REGISTRY[key]
    specs: dict[str, Spec | None] = {
        p.name: entry.args.get(p.name) or default_spec(p) for p in walked_parameters(TARGETS[key])
    }
    return {**specs, **{name: s for name, s in entry.args.items() if name not in specs}}


def valid_value(key: str, arg: str, kwargs: dict) -> Any:
    """The valid value of ``arg`` that bad values are made from (None: the spec needs none)."""
    if arg in kwargs:
        return kwargs[arg]
    spec = arg_specs(key)[arg]
    if isinstance(spec, Data) and spec.given is not None:
        return spec.given()
    if isinstance(spec, (Real, Int, Choice, Fn, Module)):
        return None  # their bad values do not depend on a valid one
    params = {p.name: p for p in walked_parameters(TARGETS[key])}
    default = params[arg].default if arg in params else None
    if default in (None, inspect.Parameter.empty):
        raise AssertionError(
            f"{key}: the valid call gives no value for {arg!r}: add one to its factory"
        )
    return default


# ---- describing values and outcomes ------------------------------------------------------------


def show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
        if value.is_floating_point():
            n_nan, n_inf = int(value.isnan().sum()), int(value.isinf().sum())
            text += "".join([f", {n_nan} NaN" if n_nan else "", f", {n_inf} inf" if n_inf else ""])
        if value.numel() <= 4:
            text += f" {value.tolist()}"
        return text
    if isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
        return "(" + ", ".join(show(v) for v in value) + ")"
    if value is None or isinstance(value, (bool, int, float, str, tuple, list)):
        text = repr(value)
        return text if len(text) < 80 else text[:77] + "..."
    return f"a {type(value).__name__}"


def describe(error: BaseException) -> str:
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message[:200]}"


def call(fn, kwargs: dict) -> tuple[Any, BaseException | None]:
    try:
        return fn(**kwargs), None
    except Exception as error:  # noqa: BLE001 - the outcome is what we test
        return None, error


def call_seeded(fn, kwargs: dict) -> tuple[Any, BaseException | None]:
    """``call`` with the global RNG in a fixed state, restored afterwards (for code that draws
    from it: the two calls compared must see the same random numbers)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return call(fn, kwargs)


def names(arg: str, message: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(arg)}(?!\w)", message) is not None


# ---- 1. completeness ---------------------------------------------------------------------------


def test_every_public_name_is_walked_or_exempt():
    missing = [
        key
        for key, target in TARGETS.items()
        if key not in REGISTRY and key not in EXEMPT and rule_exemption(key, target) is None
    ]
    hint = (
        "add an entry to tests/_registry_*.py: V(factory, arg=Spec...) if it fits, predicts, "
        "evaluates or generates data, Fw(...) if it is a forward pass of an energy or a loss; "
        "or a written reason to EXEMPT in tests/_registry_misc.py"
    )
    assert not missing, (
        "public names the bad-input walker does not know:\n"
        + "\n".join(
            f"  {key}{inspect.signature(TARGETS[key]) if not isinstance(TARGETS[key], tuple) else ''}"
            for key in missing
        )
        + f"\n{hint}"
    )


def test_every_public_submodule_is_in_ebm_all():
    missing = [
        name for name in top_level_submodules() if name.removeprefix("ebm.") not in ebm.__all__
    ]
    assert not missing, (
        f"public submodules missing from ebm.__all__ (and its lazy loader): {missing}"
    )


def test_registry_has_no_stale_or_doubled_entries():
    stale = sorted(k for k in [*REGISTRY, *EXEMPT] if k not in TARGETS)
    assert not stale, f"entries for names that are not public (renamed or removed?): {stale}"
    both = sorted(set(REGISTRY) & set(EXEMPT))
    assert not both, f"names both walked and exempt: {both}"
    assert len(REGISTRY) == len(CORE) + len(MODELS) + len(MISC), "a key is in two registry parts"


def test_every_argument_has_a_spec():
    problems = []
    for key in REGISTRY:
        if key not in TARGETS:
            continue
        params = walked_parameters(TARGETS[key])
        has_kwargs = any(
            p.kind is p.VAR_KEYWORD
            for p in inspect.signature(
                TARGETS[key] if not isinstance(TARGETS[key], tuple) else getattr(*TARGETS[key])
            ).parameters.values()
        )
        for name, spec in arg_specs(key).items():
            if spec is None:
                annotation = next(p.annotation for p in params if p.name == name)
                problems.append(
                    f"  {key}: argument {name!r} ({annotation}) has no spec: add {name}=Real(...), "
                    f"Int(...), Choice(), Data(...), Interval(), Sizes(), ... or Skip('why')"
                )
            elif name not in {p.name for p in params} and not has_kwargs:
                problems.append(f"  {key}: spec for {name!r}, which is not an argument")
    assert not problems, "bad-input registry out of date:\n" + "\n".join(problems)


# ---- 0. the valid calls are valid ---------------------------------------------------------------

WALKED = sorted(k for k in REGISTRY if k in TARGETS)


def test_data_arguments_are_floating_tensors():
    """Bad values are made from valid ones: NaN needs a floating tensor to live in."""
    wrong = []
    for key in WALKED:
        _, kwargs = REGISTRY[key].make()
        for arg, spec in arg_specs(key).items():
            if isinstance(spec, Data):
                value = valid_value(key, arg, kwargs)
                if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
                    wrong.append(f"{key}: {arg} = {show(value)}")
    assert not wrong, "Data arguments whose valid value is not a floating tensor:\n" + "\n".join(
        wrong
    )


@pytest.mark.parametrize("key", WALKED)
def test_valid_call_succeeds(key):
    fn, kwargs = REGISTRY[key].make()
    result, error = call(fn, kwargs)
    assert error is None, f"{key}: the registry's valid call fails with {describe(error)}"


# ---- 2. one bad argument at a time -------------------------------------------------------------


class Case(NamedTuple):
    key: str
    arg: str
    kind: str

    def __str__(self) -> str:
        return f"{self.key}-{self.arg}-{self.kind}"


BAD_CASES = [
    Case(key, arg, kind)
    for key in WALKED
    for arg, spec in arg_specs(key).items()
    if spec is not None
    for kind in spec.bad(REGISTRY[key].kind)
]


@pytest.mark.parametrize("case", BAD_CASES, ids=str)
def test_bad_value_gets_the_documented_outcome(case):
    entry = REGISTRY[case.key]
    bad = arg_specs(case.key)[case.arg].bad(entry.kind)[case.kind]
    _, kwargs = entry.make()
    strategy = bad.strategy(valid_value(case.key, case.arg, kwargs))

    @settings(PROFILE, max_examples=bad.examples)
    @given(strategy)
    def check(value):
        fn, kwargs = entry.make()
        kwargs[case.arg] = value
        result, error = call(fn, kwargs)
        where = f"{case.key}({case.arg}={show(value)}) [{case.kind}]"
        if bad.expect == PROPAGATE:
            assert error is None, (
                f"{where}: a forward pass lets NaN/inf through (no check, no host sync); "
                f"it raised {describe(error)}"
            )
        elif bad.expect == ERROR:
            assert error is not None, f"{where}: must raise, not return {show(result)}"
        else:
            assert bad.expect == RAISE
            expected = f"{where}: expected a ValueError naming {case.arg!r}"
            assert error is not None, f"{expected}; it returned {show(result)}"
            assert isinstance(error, ValueError), f"{expected}; it raised {describe(error)}"
            assert names(case.arg, str(error)), (
                f"{expected}; the message does not: {describe(error)}"
            )

    check()


# ---- 3. array-likes and integers give the float tensor's result --------------------------------


def flatten(result: Any) -> list[torch.Tensor]:
    """The numbers in a result: tensors, numbers, containers, records, fitted estimators."""
    if isinstance(result, torch.Tensor):
        return [result.detach()]
    if isinstance(result, bool | int | float):
        return [torch.tensor(float(result))]
    if isinstance(result, dict):
        return [t for key in sorted(result, key=str) for t in flatten(result[key])]
    if isinstance(result, tuple | list):
        return [t for item in result for t in flatten(item)]
    if dataclasses.is_dataclass(result):
        return [t for f in dataclasses.fields(result) for t in flatten(getattr(result, f.name))]
    if isinstance(result, torch.nn.Module):
        return flatten(dict(result.state_dict()))
    if hasattr(result, "__dict__"):  # an estimator: its learned attributes end in "_"
        learned = {
            k: v
            for k, v in vars(result).items()
            if k.endswith("_") and not k.startswith("_") and k != "history_"  # logs hold times
        }
        return flatten(learned)
    return []


def assert_same(alt: Any, ref: Any, where: str, loose: bool) -> None:
    a, r = flatten(alt), flatten(ref)
    assert len(a) == len(r), f"{where}: the result has a different structure"
    for x, y in zip(a, r):
        assert x.shape == y.shape, f"{where}: shape {tuple(x.shape)} instead of {tuple(y.shape)}"
        torch.testing.assert_close(
            x.double(),
            y.double(),
            rtol=1e-4 if loose else 1e-6,
            atol=1e-5 if loose else 1e-7,
            equal_nan=True,
            msg=lambda m: f"{where}: not the float tensor's result: {m}",
        )


FORMS = ("numpy", "list", "int", "bool")
PROMOTE_CASES = [
    Case(key, arg, form)
    for key in WALKED
    for arg, spec in arg_specs(key).items()
    if isinstance(spec, Data) and spec.promote
    for form in FORMS
]


def _forms(x: torch.Tensor, form: str) -> tuple[torch.Tensor, Any]:
    """(the float tensor, the same numbers in ``form``)."""
    if form == "numpy":
        return x, x.numpy()
    if form == "list":
        return x, x.tolist()
    rounded = x.round()
    if form == "int":
        return rounded, rounded.long()
    ones = (rounded != 0).to(x.dtype)
    return ones, ones.bool()


@pytest.mark.parametrize("case", PROMOTE_CASES, ids=str)
def test_array_likes_and_integers_give_the_float_result(case):
    entry, form = REGISTRY[case.key], case.kind
    _, kwargs = entry.make()
    ref_value, alt_value = _forms(valid_value(case.key, case.arg, kwargs), form)
    fn, kwargs = entry.make()
    ref, ref_error = call_seeded(fn, {**kwargs, case.arg: ref_value})
    fn, kwargs = entry.make()
    alt, alt_error = call_seeded(fn, {**kwargs, case.arg: alt_value})
    where = f"{case.key}({case.arg}=<{form}>)"
    if ref_error is not None:  # the float values are rejected: so must these be
        assert isinstance(alt_error, ValueError), (
            f"{where}: the float tensor is rejected ({describe(ref_error)}), this gives "
            + (describe(alt_error) if alt_error else f"a result {show(alt)}")
        )
        return
    if (
        entry.kind == "forward"
        and isinstance(alt_error, ValueError)
        and names(case.arg, str(alt_error))
    ):
        return  # a forward pass may insist on a floating tensor, if it says so
    assert alt_error is None, (
        f"{where}: must give the float tensor's result; it raised {describe(alt_error)}"
    )
    assert_same(alt, ref, where, loose=form == "list")


# ---- 4. forward passes: a NaN row stays in its row ---------------------------------------------


def _default_out(result: Any) -> torch.Tensor:
    return result if isinstance(result, torch.Tensor) else result[0]


NAN_CASES = [
    Case(key, arg, "row" if REGISTRY[key].rows and spec.row_dim is not None else "anywhere")
    for key in WALKED
    if REGISTRY[key].kind == "forward"
    for arg, spec in arg_specs(key).items()
    if isinstance(spec, Data) and spec.finite is not True
]


@pytest.mark.parametrize("case", NAN_CASES, ids=str)
def test_forward_pass_propagates_nan(case):
    entry = REGISTRY[case.key]
    spec = arg_specs(case.key)[case.arg]
    _, kwargs = entry.make()
    x = valid_value(case.key, case.arg, kwargs)
    dim = spec.row_dim if case.kind == "row" else None
    n = x.shape[dim] if dim is not None else x.numel()

    @settings(PROFILE, max_examples=3)
    @given(st.integers(0, n - 1))
    def check(i):
        bad = x.detach().clone()
        if dim is None:
            bad.view(-1)[i] = math.nan
        else:
            bad.select(dim, i).fill_(math.nan)
        fn, kwargs = entry.make()
        result, error = call(fn, {**kwargs, case.arg: bad})
        where = f"{case.key}: NaN in {'row ' + str(i) if dim is not None else 'element ' + str(i)} of {case.arg}"
        assert error is None, f"{where}: a forward pass must not raise; it raised {describe(error)}"
        out = (entry.out or _default_out)(result).detach()
        if dim is None:
            assert out.isnan().any(), (
                f"{where}: the output {show(out)} has no NaN: the NaN was lost"
            )
            return
        assert out[i].isnan().any(), (
            f"{where}: row {i} of the output is {out[i].tolist()}: the NaN was lost"
        )
        others = torch.cat([out[:i], out[i + 1 :]])
        assert others.isfinite().all(), f"{where}: the NaN leaked into other rows: {show(others)}"

    check()


# ---- 5. forward passes do not synchronise with the host -----------------------------------------

SYNC_OPS = frozenset(
    {
        "item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__",
        "__complex__", "is_nonzero", "nonzero", "argwhere", "masked_select", "unique",
        "unique_consecutive",
    }
)  # fmt: skip


class SyncSpy(TorchFunctionMode):
    """Records the tensor operations that need a value on the host (a sync on an accelerator)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNC_OPS:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


SYNC_KEYS = [k for k in WALKED if REGISTRY[k].kind == "forward" and not REGISTRY[k].sync_ok]


@pytest.mark.parametrize("key", SYNC_KEYS)
def test_forward_pass_does_not_sync(key):
    entry = REGISTRY[key]
    fn, kwargs = entry.make()
    with SyncSpy() as spy:
        fn(**{**kwargs, **entry.nosync})
    assert not spy.seen, (
        f"{key}: a forward pass reads tensor values on the host ({', '.join(sorted(set(spy.seen)))}): "
        "a device sync on every call (STYLE.md: no .item(), bool(tensor) or isfinite().all() on "
        "the hot path)"
    )
