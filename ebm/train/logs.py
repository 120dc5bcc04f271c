"""Metrics: device-side buffering, the one host sync per flush, history, CSV and TensorBoard.

The hot path only appends detached tensors to a list. A *flush* (every ``log_every_n_steps``
steps, before every checkpoint, at each epoch end, and every 0.5 s while a progress bar is
shown) stacks them and copies them to the host in
one transfer: that single sync serves both logging and the non-finite check of
``nan_policy="raise"``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import torch

__all__ = [
    "NonFiniteLossError",
    "NonFiniteGradientError",
    "NonFiniteStateError",
    "StepBuffer",
    "snapshot",
    "first_non_finite",
    "RunLog",
]


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite (``nan_policy="raise"``)."""


class NonFiniteGradientError(NonFiniteLossError):
    """The loss was finite but its gradient was not (``sqrt`` or ``log`` at 0, ...)."""


class NonFiniteStateError(NonFiniteLossError):
    """A weight or optimiser state is NaN or infinite: the checkpoint is not written."""


class StepBuffer:
    """Per-step metric tensors waiting for the next flush.

    ``terms`` are logged (and checked); ``checks`` are only checked (e.g. every loss handed to
    ``optimize`` in manual optimisation).
    """

    def __init__(self):
        self.records: list[tuple[int, int, int, dict, dict]] = []

    def __len__(self) -> int:
        return len(self.records)

    def add(self, step: int, epoch: int, batch: int, terms: dict, checks: dict | None = None):
        self.records.append((step, epoch, batch, terms, checks or {}))

    def flush(self) -> list[tuple[int, int, int, dict[str, float], dict[str, float]]]:
        """Host copies of every buffered value (one device->host transfer); empties the buffer."""
        if not self.records:
            return []
        tensors, slots = [], []
        for _, _, _, terms, checks in self.records:
            for name, value in (*terms.items(), *checks.items()):
                if isinstance(value, torch.Tensor):
                    if value.numel() != 1:
                        raise ValueError(
                            f"logged metric {name!r} must be a scalar, got shape "
                            f"{tuple(value.shape)}"
                        )
                    slots.append(len(tensors))
                    tensors.append(value.detach().reshape(()).float())
                else:
                    slots.append(float(value))
        host = _to_host(tensors)
        out, k = [], 0
        for step, epoch, batch, terms, checks in self.records:
            row = []
            for names in (terms, checks):
                values = {}
                for name in names:
                    slot = slots[k]
                    values[name] = host[slot] if isinstance(slot, int) else slot
                    k += 1
                row.append(values)
            out.append((step, epoch, batch, row[0], row[1]))
        self.records = []
        return out


def _scalar(name: str, value: torch.Tensor) -> torch.Tensor:
    if value.numel() != 1:
        raise ValueError(f"logged metric {name!r} must be a scalar, got shape {tuple(value.shape)}")
    return value.detach().reshape(()).float()


def snapshot(values: dict) -> dict:
    """The same dict with its tensors copied into fresh storage (one kernel per device).

    Step metrics wait on the device until the next flush; a metric such as
    ``param.detach()`` shares storage with a parameter that the optimiser changes in place, so
    dict returns are copied as soon as training_step returns. A bare loss is a fresh tensor.
    """
    names = [k for k, v in values.items() if isinstance(v, torch.Tensor)]
    if not names:
        return values
    tensors = [_scalar(k, values[k]) for k in names]
    if len({t.device for t in tensors}) == 1:
        copies = torch.stack(tensors).unbind()
    else:
        copies = [t.clone() for t in tensors]
    return {**values, **dict(zip(names, copies))}


def _to_host(tensors: list[torch.Tensor]) -> list[float]:
    if not tensors:
        return []
    by_device: dict[torch.device, list[int]] = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    host = [0.0] * len(tensors)
    for idx in by_device.values():
        values = torch.stack([tensors[i] for i in idx]).tolist()  # the host sync
        for i, v in zip(idx, values):
            host[i] = v
    return host


def first_non_finite(rows) -> tuple[int, int, int, dict[str, float], dict[str, float]] | None:
    """(step, epoch, batch, {name: bad value}, {term: value}) of the first step with a NaN/inf
    loss term or gradient check, else None."""
    for step, epoch, batch, terms, checks in rows:
        bad = {k: v for k, v in (*terms.items(), *checks.items()) if not math.isfinite(v)}
        bad.update({k: v for k, v in checks.items() if k.endswith("gradient") and v != 0})
        if bad:
            return step, epoch, batch, bad, terms
    return None


class RunLog:
    """The metrics history in memory, mirrored to ``<log_dir>/metrics.csv`` and TensorBoard.

    Only the main process writes files.
    """

    def __init__(self, log_dir: Path | None, tensorboard: bool | str, write: bool):
        self.history: list[dict[str, float]] = []
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.write = write and self.log_dir is not None
        self._tb = None
        self._columns: list[str] = []
        self._written = 0  # rows of history already in metrics.csv
        if self.write and tensorboard:
            self._tb = _summary_writer(self.log_dir, required=tensorboard is True)

    def append(self, row: dict) -> None:
        self.history.append(row)
        if self._tb is not None:
            step = int(row.get("step", len(self.history)))
            prefix = "epoch/" if "batch" not in row else "step/"
            for name, value in row.items():
                if name not in ("step", "epoch", "batch"):
                    self._tb.add_scalar(prefix + name, value, step)

    def write_csv(self) -> None:
        """Append new rows to ``metrics.csv``; rewrite it (atomically) when a column appears."""
        if not self.write or len(self.history) == self._written:
            return
        new_rows = self.history[self._written :]
        columns = dict.fromkeys(self._columns)
        for row in new_rows:
            columns.update(dict.fromkeys(row))
        path = self.log_dir / "metrics.csv"
        if list(columns) == self._columns and path.exists():
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns).writerows(new_rows)
        else:
            self._columns = list(columns)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(self.history)
            os.replace(tmp, path)
        self._written = len(self.history)
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self.write_csv()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _summary_writer(log_dir: Path, required: bool):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # tensorboard is an optional extra
        if required:
            raise ImportError(
                "tensorboard=True needs the tensorboard package: pip install 'ebm[tensorboard]'"
            ) from err
        return None
    return SummaryWriter(log_dir=str(log_dir / "tensorboard"))
