"""The public surface of ``ebm``, enumerated, and the vocabulary the bad-input walker speaks.

What counts as public (the walker's definition, checked by ``test_bad_inputs.py``):

- ``ebm.__all__``, and every top-level submodule whose name does not start with ``_`` (a module
  a user can import by its documented name is public even if ``ebm.__all__`` forgets it;
  ``test_bad_inputs`` checks that it does not); every public submodule's ``__all__``; a module
  named in an ``__all__`` is walked too (``ebm.train.callbacks``). A submodule without ``__all__`` (``ebm.energies``,
  ``ebm.latent``, ``ebm.score_matching``, ``ebm.recipe``) exports the functions
  and classes it defines whose names do not start with ``_`` (imported names are not its own).
- One object listed under several names is walked once, under the name of its deepest module
  (``ebm.Energy`` is ``ebm.energies.Energy``).
- Methods: every public method (not ``_``-prefixed; functions, class- and static methods, not
  properties) that a public class defines itself or inherits from an ``ebm`` class, never one
  inherited from torch or Python (``nn.Module.to`` is not ours). A method is walked once, under
  the public class that defines it (``ebm.energies.Energy.score`` covers every energy); one
  defined by a private base (``_Autoencoder.energy``) is walked under each public subclass.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from typing import Any

import ebm

# ---- enumeration ------------------------------------------------------------------------------


def _module_names(module: types.ModuleType) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


def top_level_submodules() -> list[str]:
    """``["ebm.bayes", ...]``: the package's own modules and subpackages not named ``_...``."""
    return sorted(
        f"ebm.{info.name}"
        for info in pkgutil.iter_modules(ebm.__path__)
        if not info.name.startswith("_")
    )


def public_modules() -> dict[str, types.ModuleType]:
    """Every public module: ``{"ebm": ebm, "ebm.losses": module, ...}``."""
    found: dict[str, types.ModuleType] = {}
    todo = [ebm, *(importlib.import_module(name) for name in top_level_submodules())]
    while todo:
        module = todo.pop(0)
        if module.__name__ in found:
            continue
        found[module.__name__] = module
        for name in _module_names(module):
            value = getattr(module, name)
            if inspect.ismodule(value):
                todo.append(value)
    return found


def public_objects() -> dict[str, Any]:
    """``{"ebm.losses.hinge_loss": function, "ebm.models.PCA": class, ...}``, one key per object."""
    candidates: list[tuple[str, Any]] = []
    for modname, module in public_modules().items():
        for name in _module_names(module):
            value = getattr(module, name)
            if not inspect.ismodule(value):
                candidates.append((f"{modname}.{name}", value))
    # one object, several names: keep the name in the deepest module (most dots), then the first
    best: dict[int, str] = {}
    for key, value in candidates:
        current = best.get(id(value))
        if current is None or key.count(".") > current.count("."):
            best[id(value)] = key
    keep = set(best.values())
    return {key: value for key, value in candidates if key in keep}


def _is_method_like(raw: Any) -> bool:
    return isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw)


def public_methods(objects: dict[str, Any] | None = None) -> dict[str, tuple[type, str]]:
    """``{"ebm.models.PCA.fit": (PCA, "fit"), ...}``: (a public class to reach it from, name)."""
    objects = public_objects() if objects is None else objects
    class_keys = {id(v): k for k, v in objects.items() if inspect.isclass(v)}
    methods: dict[str, tuple[type, str]] = {}
    for cls in objects.values():
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        for name in dir(cls):
            if name.startswith("_"):
                continue
            owner = next((c for c in cls.__mro__ if name in vars(c)), None)
            if owner is None or not owner.__module__.startswith("ebm"):
                continue
            if not _is_method_like(vars(owner)[name]):
                continue
            if id(owner) in class_keys:  # a public class defines it: walk it there
                home_key = class_keys[id(owner)]
            else:  # a private base defines it: the nearest public class below that base
                below = cls.__mro__[: cls.__mro__.index(owner)]
                home = next(c for c in reversed(below) if id(c) in class_keys)
                home_key = class_keys[id(home)]
            methods.setdefault(f"{home_key}.{name}", (cls, name))
    return methods


def public_callables() -> dict[str, Any]:
    """Every walked name: public functions and classes, and public methods (as ``(cls, name)``)."""
    objects = public_objects()
    return {**objects, **public_methods(objects)}


def signature_of(target: Any) -> inspect.Signature:
    """The signature a user calls: a class's constructor, a method without ``self``/``cls``."""
    if isinstance(target, tuple):
        cls, name = target
        raw = inspect.getattr_static(cls, name)
        function = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        params = list(inspect.signature(function).parameters.values())
        if not isinstance(raw, staticmethod):
            params = params[1:]
        return inspect.Signature(params)
    return inspect.signature(target)


def walked_parameters(target: Any) -> list[inspect.Parameter]:
    """Named parameters (``*args``/``**kwargs`` are not names a user can get wrong)."""
    return [
        p
        for p in signature_of(target).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
