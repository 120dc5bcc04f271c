"""What every recipe shares: its command line and its outputs.

A recipe is a thin script: ``args = parse_args(...)`` -> build -> ``Trainer.fit`` -> plot ->
``save_figure``, ``write_results`` (and ``save_samples``). Under ``torchrun`` only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def parse_args(
    description: str, argv: Sequence[str] | None = None, add_arguments=None
) -> argparse.Namespace:
    """The common flags: --quick, --device auto|cpu|cuda|mps, --seed, --out (default figures).

    add_arguments: optional callable(parser) adding recipe-specific flags.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small and fast: for smoke tests and CI"
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args(argv)


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialised torch.distributed job."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized() and dist.get_rank() != 0)


def save_figure(fig, out: Path | str, name: str, dpi: int = 110) -> Path:
    """Write ``<out>/<name>.png`` (rank 0 only) and close the figure."""
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
    """Write the recipe's key numbers to ``<out>/<name>.json`` atomically (rank 0 only)."""
    path = Path(out) / f"{name}.json"
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_jsonable(results), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    return path


def save_samples(out: Path | str, name: str, arrays: dict[str, torch.Tensor | np.ndarray]) -> Path:
    """Write ``arrays`` to ``<out>/<name>_samples.npz`` atomically (rank 0 only).

    The samples a figure shows and its numbers were computed on, so anyone can recompute them:
    ``np.load(path)[key]``. Tensors are detached and moved to the CPU; keys are kept as given.
    """
    if not isinstance(arrays, dict) or not arrays:
        raise ValueError(f"arrays must be a non-empty dict of name -> array, got {arrays!r}")
    saved = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"arrays' keys must be non-empty strings, got {key!r}")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"arrays[{key!r}] must be a torch.Tensor or numpy array, got {type(value).__name__}"
            )
        saved[key] = value
    path = Path(out) / f"{name}_samples.npz"
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".npz.tmp")
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **saved)
        os.replace(tmp, path)
    return path
