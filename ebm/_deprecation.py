"""Old argument names, accepted for one release with a DeprecationWarning.

0.2 gave every idea one name (``generator`` for random draws, ``n_steps``/``max_iter``/
``max_epochs`` for iteration counts, ``noise`` for a data generator's noise std). The old names
still work until 0.3, each with a warning that names the new one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch

from ebm._checks import make_generator

__all__ = ["renamed_arguments", "seed_to_generator"]

REMOVED_IN = "0.3"


def seed_to_generator(seed: int | None) -> torch.Generator | None:
    """The generator an old ``seed=`` argument stands for: seeded as before, None stays None."""
    return None if seed is None else make_generator(seed)


def renamed_arguments(**renames: str | tuple[str, Callable[[Any], Any]]):
    """Decorator: accept the old keyword ``old`` for ``new``, with a DeprecationWarning.

    renames: ``old="new"``, or ``old=("new", convert)`` where ``convert`` maps the old value to
    the new one (``seed=("generator", seed_to_generator)``). Passing both names is a TypeError.
    The wrapped function keeps its signature (``inspect.signature`` shows the new names only).
    """

    def decorate(function):
        # SVIRegressor.__init__ -> "SVIRegressor()", the call the user wrote
        name = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, spec in renames.items():
                if old not in kwargs:
                    continue
                new, convert = spec if isinstance(spec, tuple) else (spec, None)
                if new in kwargs:
                    raise TypeError(
                        f"{name}() got both {old!r} (deprecated) and {new!r}; pass only {new!r}"
                    )
                warnings.warn(
                    f"{name}(): argument {old!r} is deprecated and will be "
                    f"removed in {REMOVED_IN}; use {new!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                value = kwargs.pop(old)
                kwargs[new] = convert(value) if convert is not None else value
            return function(*args, **kwargs)

        return wrapper

    return decorate
