"""What every recipe shares: its command line and its outputs.

A recipe is a thin script: ``args = parse_args(...)`` -> build -> ``Trainer.fit`` -> plot ->
``save_figure``, ``save_samples`` and ``write_results``, then ``print_table`` of its key numbers.
Under ``torchrun`` only rank 0 writes files and prints.

Recipes write to ``build/figures`` unless ``--out`` says otherwise: only ``make gallery``
(``--out figures``) rewrites the committed gallery.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ebm.train.precision import PRECISIONS

__all__ = [
    "parse_args",
    "is_main_process",
    "save_figure",
    "write_results",
    "save_samples",
    "format_number",
    "print_table",
]


def __dir__() -> list[str]:
    return list(__all__)


DEFAULT_OUT = Path("build/figures")


def parse_args(
    description: str, argv: Sequence[str] | None = None, add_arguments=None
) -> argparse.Namespace:
    """Parse a recipe's command line: the common flags, plus the recipe's own.

    description: the recipe's docstring (``__doc__``), or just its first paragraph. ``--help``
        prints the first paragraph under the usage line, then the options, then the rest of
        the docstring; paragraphs, indented commands and "- " lists keep their line breaks.
    argv: the arguments to parse, a sequence of strings (None: ``sys.argv[1:]``).
    add_arguments: optional callable ``add_arguments(parser)`` that adds the recipe's own flags
        to the ``argparse.ArgumentParser`` (with ``help=`` texts; the common ones are taken).

    The common flags: ``--quick`` (a small, fast run for smoke tests and CI), ``--device``
    (auto|cpu|cuda|mps, default auto: cuda, then mps, then cpu), ``--precision``
    (32|bf16|16-mixed, default "32"; passed to the recipe's ``Trainer`` fits, accepted and
    ignored by recipes that fit no model with the Trainer), ``--seed`` (an int, default 0) and
    ``--out`` (the output folder, default ``build/figures``).

    Returns the ``argparse.Namespace`` of every flag (``args.quick``, ``args.device``,
    ``args.precision``, ``args.seed``, ``args.out`` as a ``Path``, and the recipe's own). A bad
    flag prints the usage and exits with status 2, as argparse does.
    """
    summary, _, details = inspect.cleandoc(description).partition("\n\n")
    parser = argparse.ArgumentParser(
        description=summary,
        epilog=details.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small and fast: for smoke tests and CI"
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="where to train (default auto: cuda, then mps, then cpu)",
    )
    parser.add_argument(
        "--precision",
        default="32",
        choices=PRECISIONS,
        help="precision of the Trainer fits: 32 (default), bf16 or 16-mixed autocast",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the run's randomness: initial weights, data order, sampling (default 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder (default {DEFAULT_OUT}; `make gallery` writes figures/)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args(argv)


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialised torch.distributed job."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def save_figure(fig, out: Path | str, name: str, dpi: int = 110) -> Path:
    """Write ``<out>/<name>.png`` (rank 0 only) and close the figure; return the path.

    fig: a matplotlib ``Figure``, closed afterwards on every rank (so a recipe drawing many
    figures does not keep them open). out: the output folder, created if missing. name: the
    file's stem. dpi: dots per inch of the PNG (default 110). The path is returned on every
    rank, written or not.
    """
    import matplotlib.pyplot as plt

    path = Path(out) / f"{name}.png"
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_results(out: Path | str, name: str, results: dict) -> Path:
    """Write the recipe's key numbers to ``<out>/<name>.json`` atomically (rank 0 only).

    out: the output folder, created if missing. name: the file's stem.
    results: a dict of numbers, strings, lists and nested dicts; tensors become (nested)
    lists, numpy scalars Python numbers, non-finite floats the strings "nan", "inf", "-inf",
    and keys strings. Keys are sorted in the file. Returns the path (on every rank).
    """
    path = Path(out) / f"{name}.json"
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_jsonable(results), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    return path


def save_samples(out: Path | str, name: str, arrays: dict[str, torch.Tensor | np.ndarray]) -> Path:
    """Write the samples behind a figure to ``<out>/<name>_samples.npz`` atomically (rank 0 only).

    arrays: one array per panel, named after it, e.g. ``{"ancestral": (N, 1), "ode": (N, 1)}``;
    tensors are detached and moved to the CPU. Read back with ``numpy.load``.
    """
    path = Path(out) / f"{name}_samples.npz"
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                **{
                    k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
                    for k, v in arrays.items()
                },
            )
        os.replace(tmp, path)
    return path


def format_number(value) -> str:
    """One table cell: 4 significant digits for floats, integers as they are, short vectors inline.

    value: a Python or numpy scalar, a 0-d or size-1 tensor/array, a short 1-D one (≤ 12
    values, shown as ``[a, b, c]``; longer ones as ``<array (shape)>``), a bool (yes/no), a
    string (as it is) or None (``-``). Floats from 1e4 to 1e7 are shown without decimals,
    non-finite ones as ``nan``/``inf``/``-inf``. Any other type is a TypeError.

    >>> format_number(3.14159265), format_number(12345.6), format_number(7), format_number(None)
    ('3.142', '12346', '7', '-')
    """
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.size == 1:
            return format_number(array.reshape(()).item())
        if array.ndim == 1 and array.size <= 12:
            return "[" + ", ".join(format_number(v.item()) for v in array) + "]"
        return f"<array {tuple(array.shape)}>"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return str(value)  # nan, inf, -inf
        if value == 0:
            return "0"
        if 1e4 <= abs(value) < 1e7:
            return f"{value:.0f}"
        return f"{value:.4g}"
    raise TypeError(
        f"a table cell must be a number, string, None or tensor, got {type(value).__name__}"
    )


def print_table(
    title: str,
    rows: Mapping[str, Mapping[str, object]] | Mapping[str, object],
    header: str = "",
    file=None,
) -> str:
    """Print a recipe's key numbers as a small aligned table (rank 0 only); return its text.

    title: the line printed above the table.
    rows: either ``{row: value}`` (a two-column table) or ``{row: {column: value}}`` (columns in
    order of first appearance; a missing cell is left blank). Values are formatted by
    ``format_number``: floats with 4 significant digits, never raw dicts or tensor reprs.
    header: the name of the first column (row labels) of a ``{row: {column: value}}`` table.
    file: where to print (default ``sys.stdout``).

    >>> _ = print_table("demo", {"train": {"loss": 0.123456, "steps": 300}, "val": {"loss": 0.2}})
    demo
             loss  steps
    -----  ------  -----
    train  0.1235    300
    val       0.2
    """
    import sys

    if not isinstance(rows, Mapping) or not rows:
        raise ValueError(f"rows must be a non-empty mapping, got {rows!r}")
    nested = [isinstance(v, Mapping) for v in rows.values()]
    if any(nested) and not all(nested):
        raise ValueError(
            "rows must map every row to a value, or every row to a {column: value} mapping, "
            "not a mix of both"
        )
    if all(nested):
        columns = list(dict.fromkeys(c for cells in rows.values() for c in cells))
        table = [[header, *map(str, columns)]] + [
            [str(name), *(format_number(cells[c]) if c in cells else "" for c in columns)]
            for name, cells in rows.items()
        ]
    else:
        table = [[str(name), format_number(value)] for name, value in rows.items()]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))]).rstrip()

    body = [line(row) for row in table]
    rule = "  ".join("-" * w for w in widths)
    if all(nested):
        body.insert(1, rule)
    text = "\n".join([title, *(body if all(nested) else [rule, *body])])
    if is_main_process():
        print(text, file=file or sys.stdout, flush=True)
    return text
