"""Lazy attribute loading for package namespaces.

Heavy submodules (pyro, torchdiffeq, matplotlib) load on first use, so `import ebm` stays fast
and has no side effects.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """Return a module-level ``__getattr__`` for ``package``.

    exports: public name -> submodule (relative to ``package``) that defines it. A name that maps
    to itself is a submodule, e.g. ``{"losses": "losses"}``. Any other submodule of ``package``
    (``ebm.models.kmeans``) also loads on first access, as after ``import ebm.models.kmeans``.
    """

    def __getattr__(name: str) -> object:
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            return module if exports[name] == name else getattr(module, name)
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def lazy_namespace(
    package: str, exports: dict[str, str]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``__all__, __getattr__, __dir__`` for a package whose public names load lazily.

    Use as ``__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)``.
    """
    names = sorted(exports)
    return names, lazy_getattr(package, exports), lambda: list(names)
