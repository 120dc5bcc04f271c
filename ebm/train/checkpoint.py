"""Checkpoints on disk: atomic writes, safe loads, every RNG state, and a rotating folder.

A checkpoint is a plain nested dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(weights_only=True)``: unpickling can build no arbitrary Python object, and a
file that carries one is refused with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "CheckpointWriteError",
    "save_atomic",
    "load_checkpoint",
    "rng_states",
    "set_rng_states",
    "CheckpointDir",
]

FORMAT = "ebm.train.checkpoint/1"
LAST = "last.pt"
_NUMBERED = re.compile(r"^step(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: empty, truncated, garbled, or not an ebm checkpoint.

    The message names the file and says what is wrong with it.
    """


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file holds pickled Python objects that a weights-only load refuses to build."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (no space, permission, file-size limit, ...).

    Raised by the trainer's checkpoint writes (an ``OSError``); the previous checkpoint of the
    same name is left intact.

    message: what could not be written, the operating system's reason and what is intact.
    errno: the operating system's error number where one is known (e.g. ``errno.ENOSPC``),
        else None; kept as the ``errno`` attribute.
    """

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


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


class _RecordingWriter(io.RawIOBase):
    """A file wrapper that remembers the OSError of a failed write.

    torch's zip writer reports a failed write as an internal assertion ("unexpected pos ...");
    the wrapper keeps the operating system's reason (ENOSPC, EFBIG, EACCES, ...) to report.
    """

    def __init__(self, file):
        super().__init__()
        self.file, self.error = file, None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()


def _why(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno is not None:
        return os.strerror(err.errno)
    return _ANSI.sub("", str(err)).strip().splitlines()[0] if str(err).strip() else repr(err)


def save_atomic(obj: dict, path: Path | str, intact: str | None = None) -> Path:
    """Write ``obj`` with torch.save to a temporary file, fsync it, rename it over ``path``.

    A failed write raises :class:`CheckpointWriteError` with the operating system's reason and
    leaves any previous file at ``path`` untouched (``intact``: what the message calls intact).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        with open(tmp, "wb") as f:
            writer = _RecordingWriter(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        cause = writer.error if writer is not None and writer.error is not None else err
        errno = getattr(cause, "errno", None)
        raise CheckpointWriteError(
            f"could not write the checkpoint {path}: {_why(cause)}; {intact or path.name} is "
            "untouched",
            errno,
        ) from err
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path | str, map_location="cpu") -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    path: the file, a ``str`` or ``Path`` (e.g. ``"runs/demo/last.pt"`` or a numbered
        ``stepNNNNNNNN.pt``).
    map_location: where the tensors go, as for ``torch.load``: a device or its name
        (default "cpu"), a dict remapping storage locations, or a callable.

    Returns the checkpoint, a dict: ``"format"`` ("ebm.train.checkpoint/1"), ``"model"`` (the
    model's ``state_dict``: ``model.load_state_dict(load_checkpoint(path)["model"])``),
    ``"optimizers"`` and ``"schedulers"`` (lists of their state dicts), ``"scaler"`` and
    ``"ema"`` (state dicts or None), ``"callbacks"`` (a list of their ``state_dict()``s),
    ``"history"`` (the logged rows), ``"rng"`` (every RNG state, one entry per rank),
    ``"run"`` (what exact resumption depends on) and ``"loop"`` (the position in training:
    ``epoch``, ``batch``, ``step``, ...).

    Raises FileNotFoundError if there is no file, :class:`CheckpointError` (a ValueError) if
    the file is empty, truncated, garbled or not an ebm checkpoint, and
    :class:`UnsafeCheckpointError` if it holds pickled Python objects, which are never built.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"the checkpoint path {path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"the checkpoint {path} is empty (0 bytes): an interrupted write?")
    with open(path, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise CheckpointError(
            f"the checkpoint {path} ({size} bytes) is not a torch.save archive: "
            "the file is garbled or of another format"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(
            f"the checkpoint {path} ({size} bytes) is truncated or corrupt: {_why(err)}"
        ) from err
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(_ANSI.sub("", str(err)))
        if found is None:
            raise CheckpointError(
                f"the checkpoint {path} is corrupt: its pickled index cannot be read"
            ) from err
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds a pickled Python object ({found.group(1)}), "
            "and building one could run arbitrary code. ebm checkpoints hold only tensors, "
            "numbers, strings, lists and dicts; keep a model's extra state to those types."
        ) from err
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"the checkpoint {path} cannot be read: {_why(err)}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ebm.train checkpoint (format {FORMAT!r} expected)")
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

    path: the folder (created by :meth:`check_writable`, not here).
    keep_last: how many numbered checkpoints to keep, an int >= 1 (default 3; None keeps all;
    last.pt always stays). Zero is refused: the newest numbered file is the one last.pt names.
    """

    def __init__(self, path: Path | str, keep_last: int | None = 3):
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
        ):
            raise ValueError(f"keep_last must be an int >= 1 or None, got {keep_last!r}")
        self.path, self.keep_last = Path(path), keep_last
        self._replaced: list[Path] = []  # an earlier run's files, deleted at the first save

    def earlier_run(self) -> list[Path]:
        """The checkpoints already in the folder: last.pt (if any), then the numbered files."""
        if not self.path.is_dir():
            return []
        return ([self.last] if self.last.exists() else []) + self.numbered()

    def replace_at_first_save(self, files: list[Path]) -> None:
        """Delete ``files`` (an earlier run's checkpoints) when :meth:`save` next writes: until
        then they stay, so a run that fails before its first checkpoint destroys nothing."""
        self._replaced = list(files)

    def check_writable(self) -> None:
        """Fail before training if checkpoints could not be written here: the folder cannot be
        created or written, or ``last.pt`` (or a temporary name) exists and is not a file."""
        probe = self.path / f".write-test-{os.getpid()}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise ValueError(f"ckpt_dir {str(self.path)!r} is not writable: {_why(err)}") from err
        if self.last.exists() and not self.last.is_file():
            raise ValueError(
                f"ckpt_dir holds {self.last}, which is not a regular file: the trainer writes "
                f"its newest checkpoint there; move it away"
            )

    @property
    def last(self) -> Path:
        return self.path / LAST

    def numbered(self) -> list[Path]:
        """Numbered checkpoints, oldest first."""
        found = [p for p in self.path.iterdir() if _NUMBERED.match(p.name)]
        return sorted(found, key=lambda p: int(_NUMBERED.match(p.name).group(1)))

    def save(self, state: dict, step: int) -> Path:
        """Write ``stepNNNNNNNN.pt`` atomically, then point last.pt at it, then delete an
        earlier run's files (see :meth:`replace_at_first_save`), then rotate."""
        target = save_atomic(state, self.path / f"step{step:08d}.pt", f"the previous {LAST}")
        self._replace_last(target)
        for stale in self._replaced:
            if stale not in (target, self.last):
                stale.unlink(missing_ok=True)
        self._replaced = []
        if self.keep_last is not None:
            old = self.numbered()
            for stale in old[: max(0, len(old) - self.keep_last)]:
                stale.unlink(missing_ok=True)
        return target

    def _replace_last(self, target: Path) -> None:
        tmp = self.path / f".{LAST}.{os.getpid()}.tmp"
        try:
            tmp.unlink(missing_ok=True)
            try:
                os.link(target, tmp)  # a second name for the same complete file: no copy
            except OSError:
                shutil.copyfile(target, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, self.last)
        except OSError as err:
            raise CheckpointWriteError(
                f"could not point {self.last} at {target.name}: {_why(err)}; the previous "
                f"{LAST} is untouched and {target.name} is complete",
                err.errno,
            ) from err
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(self.path)
