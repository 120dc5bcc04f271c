"""Every public name documents itself, and every module shows only its public names.

Walks the public API (each namespace's ``__all__``) and checks, for functions, classes and the
public methods classes define:
- a docstring of its own (``forward`` may not fall back on torch's generic text);
- every argument named in it (a class's ``__init__`` arguments in the class or ``__init__``
  docstring).
And: every module under ``ebm/`` defines ``__all__``; ``dir()`` of a public namespace
(``ebm.latent``, ``ebm.models``, ...) lists no imported module (``torch``, ``nn``, ``math``)
next to the public names; every submodule is reachable as an attribute after ``import ebm``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import ebm

NAMESPACES = ["ebm"] + [f"ebm.{name}" for name in ebm._SUBMODULES]


def _public_objects() -> list[tuple[str, object]]:
    seen: dict[int, tuple[str, object]] = {}
    for namespace in NAMESPACES:
        module = importlib.import_module(namespace)
        for name in module.__all__:  # every module has one (test_module_defines_all)
            obj = getattr(module, name)
            if not inspect.ismodule(obj):
                seen.setdefault(id(obj), (f"{namespace}.{name}", obj))
    # what users import from a submodule (ebm.models.vae.mlp_encoder): the API reference shows
    # it too; the Trainer's plumbing (ebm.train.*) is internal
    for module_name in _modules():
        if module_name.startswith("ebm.train"):
            continue
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(id(obj), (f"{module_name}.{name}", obj))
    return sorted(seen.values(), key=lambda item: item[0])


def _arguments(function) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in skipped
    ]


def _mentions(doc: str | None, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", doc or "") is not None


def _own_doc(cls: type, name: str, function) -> str | None:
    """The method's docstring, inherited from a base class of ``ebm`` only (not torch's)."""
    if function.__doc__:
        return function.__doc__
    for base in cls.__mro__[1:]:
        inherited = base.__dict__.get(name)
        if inherited is not None and base.__module__.startswith("ebm"):
            inherited = getattr(inherited, "__func__", inherited)
            if getattr(inherited, "__doc__", None):
                return inherited.__doc__
    return None


def _class_gaps(qualname: str, cls: type) -> list[tuple[str, str]]:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return [(qualname, "class docstring")]
    gaps = []
    init = cls.__dict__.get("__init__")
    if init is not None:
        for argument in _arguments(init):
            if not (_mentions(doc, argument) or _mentions(init.__doc__, argument)):
                gaps.append((qualname, f"__init__ argument {argument}"))
    for name, member in cls.__dict__.items():
        if name.startswith("_") and name not in ("__call__",):
            continue
        if isinstance(member, property):
            if not member.__doc__:
                gaps.append((qualname, f"property {name}"))
            continue
        function = getattr(member, "__func__", member)
        if not inspect.isfunction(function):
            continue
        method_doc = _own_doc(cls, name, function)
        if not method_doc:
            gaps.append((qualname, f"method {name}"))
            continue
        for argument in _arguments(function):
            if not _mentions(method_doc, argument):
                gaps.append((qualname, f"{name} argument {argument}"))
    return gaps


def _function_gaps(qualname: str, function) -> list[tuple[str, str]]:
    if not function.__doc__:
        return [(qualname, "docstring")]
    return [
        (qualname, f"argument {argument}")
        for argument in _arguments(function)
        if not _mentions(function.__doc__, argument)
    ]


def _documentation_gaps() -> set[tuple[str, str]]:
    gaps: list[tuple[str, str]] = []
    for qualname, obj in _public_objects():
        if inspect.isclass(obj):
            gaps += _class_gaps(qualname, obj)
        elif callable(obj):
            gaps += _function_gaps(qualname, obj)
    return set(gaps)


def _modules() -> list[str]:
    names = ["ebm"]
    for info in pkgutil.walk_packages(ebm.__path__, prefix="ebm."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def test_every_public_name_documents_its_arguments():
    gaps = sorted(_documentation_gaps())
    assert not gaps, "undocumented public API (document it):\n" + "\n".join(map(str, gaps))


@pytest.mark.parametrize("name", _modules())
def test_module_defines_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} defines no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("name", NAMESPACES)
def test_namespace_dir_hides_imports(name):
    module = importlib.import_module(name)
    leaked = [
        n
        for n in dir(module)
        if not n.startswith("_")
        and inspect.ismodule(getattr(module, n))
        and not getattr(module, n).__name__.startswith(name + ".")
    ]
    assert not leaked, f"dir({name}) shows imported modules: {leaked}"


def test_every_submodule_is_an_attribute_after_import_ebm():
    import subprocess
    import sys

    code = "\n".join(
        ["import ebm", "import functools, operator"]
        + [
            f"assert functools.reduce(getattr, {name.split('.')[1:]!r}, ebm).__name__ == {name!r}"
            for name in _modules()[1:]
        ]
    )
    subprocess.run([sys.executable, "-c", code], check=True)
