"""Checkpoints on disk: atomic writes, safe loads, every RNG state, and a rotating folder.

A checkpoint is a plain nested dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(weights_only=True)``: unpickling can build no arbitrary Python object, and a
file that carries one is refused with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

FORMAT = "ebm.train.checkpoint/1"
LAST = "last.pt"
_NUMBERED = re.compile(r"^step(\d+)\.pt$")


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file holds pickled Python objects that a weights-only load refuses to build."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: dict, path: Path | str) -> Path:
    """Write ``obj`` with torch.save to a temporary file, fsync it, rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path | str, map_location="cpu") -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``; refuse pickled code clearly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains pickled Python objects that a weights-only "
            "load cannot build safely (unpickling them could run arbitrary code). ebm "
            "checkpoints hold only tensors, numbers, strings, lists and dicts; keep model extra "
            f"state to those types. Details: {str(err).splitlines()[0]}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an ebm.train checkpoint (format {FORMAT!r} expected)")
    return state


def rng_states() -> dict:
    """Every global RNG state: torch (CPU and each CUDA device), numpy and Python's random."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (saving the global state is the point)
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    """Restore what :func:`rng_states` captured."""
    torch.set_rng_state(state["torch"].cpu())
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class CheckpointDir:
    """``<dir>/stepNNNNNNNN.pt`` files plus ``last.pt``, the newest complete one.

    keep_last: how many numbered checkpoints to keep (None keeps all; last.pt always stays).
    The folder is checked for writability at construction, not at the first save.
    """

    def __init__(self, path: Path | str, keep_last: int | None = None):
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0
        ):
            raise ValueError(f"keep_last must be a non-negative int or None, got {keep_last!r}")
        self.path, self.keep_last = Path(path), keep_last

    def check_writable(self) -> None:
        probe = self.path / f".write-test-{os.getpid()}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise ValueError(f"ckpt_dir {str(self.path)!r} is not writable: {err}") from err

    @property
    def last(self) -> Path:
        return self.path / LAST

    def numbered(self) -> list[Path]:
        """Numbered checkpoints, oldest first."""
        found = [p for p in self.path.iterdir() if _NUMBERED.match(p.name)]
        return sorted(found, key=lambda p: int(_NUMBERED.match(p.name).group(1)))

    def save(self, state: dict, step: int) -> Path:
        """Write ``stepNNNNNNNN.pt`` atomically, then point last.pt at it, then rotate."""
        target = save_atomic(state, self.path / f"step{step:08d}.pt")
        self._replace_last(target)
        if self.keep_last is not None:
            old = self.numbered()
            for stale in old[: max(0, len(old) - self.keep_last)]:
                stale.unlink(missing_ok=True)
        return target

    def _replace_last(self, target: Path) -> None:
        tmp = self.path / f".{LAST}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(target, tmp)  # a second name for the same complete file: no copy
        except OSError:
            shutil.copyfile(target, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, self.last)
        _fsync_dir(self.path)
