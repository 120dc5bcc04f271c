"""Reading ``configure_optimizers()`` and stepping learning-rate schedulers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

__all__ = ["Scheduler", "configure", "current_lr", "grad_norm_clip"]

_INTERVALS = ("epoch", "step")


@dataclass
class Scheduler:
    """A scheduler with when to step it: every ``frequency`` epochs or (optimiser) steps.

    ``monitor`` names the logged metric a ReduceLROnPlateau scheduler watches.
    """

    scheduler: object
    interval: str = "epoch"
    frequency: int = 1
    monitor: str = "val_loss"

    def step(self, metrics: dict[str, float] | None = None) -> None:
        if isinstance(self.scheduler, ReduceLROnPlateau):
            metrics = metrics or {}
            value = metrics.get(self.monitor, metrics.get("loss"))
            if value is None:
                raise ValueError(
                    f"ReduceLROnPlateau monitors {self.monitor!r} but it was not logged; "
                    f"logged: {sorted(metrics)}"
                )
            self.scheduler.step(value)
        else:
            self.scheduler.step()


def _scheduler(entry, default_interval: str) -> Scheduler:
    if isinstance(entry, dict):
        if "scheduler" not in entry:
            raise ValueError(f"an lr_scheduler dict needs a 'scheduler' key, got {sorted(entry)}")
        sched = Scheduler(
            entry["scheduler"],
            entry.get("interval", default_interval),
            int(entry.get("frequency", 1)),
            entry.get("monitor", "val_loss"),
        )
    else:
        sched = Scheduler(entry, default_interval)
    if sched.interval not in _INTERVALS:
        raise ValueError(
            f"lr_scheduler interval must be one of {_INTERVALS}, got {sched.interval!r}"
        )
    if not hasattr(sched.scheduler, "step"):
        raise ValueError(f"lr_scheduler must have a step() method, got {type(sched.scheduler)}")
    return sched


def configure(model, default_interval: str = "epoch") -> tuple[list[Optimizer], list[Scheduler]]:
    """Optimisers and schedulers from ``model.configure_optimizers()``.

    Accepted returns: an optimizer; a list/tuple of optimizers; a dict
    ``{"optimizer": opt, "lr_scheduler": sched}`` (sched may itself be a dict with keys
    scheduler, interval "epoch"|"step", frequency, monitor); or a list of such dicts.
    """
    out = model.configure_optimizers()
    entries = out if isinstance(out, (list, tuple)) else [out]
    optimizers, schedulers = [], []
    for entry in entries:
        if isinstance(entry, dict):
            if "optimizer" not in entry:
                raise ValueError(
                    f"configure_optimizers returned a dict without 'optimizer': {sorted(entry)}"
                )
            optimizers.append(entry["optimizer"])
            extra = entry.get("lr_scheduler")
            if extra is not None:
                extra = extra if isinstance(extra, (list, tuple)) else [extra]
                schedulers.extend(_scheduler(s, default_interval) for s in extra)
        elif isinstance(entry, Optimizer):
            optimizers.append(entry)
        else:
            raise ValueError(
                "configure_optimizers must return an optimizer, a list of optimizers or "
                f"{{'optimizer': ..., 'lr_scheduler': ...}}, got {type(entry).__name__}"
            )
    if not optimizers:
        raise ValueError("configure_optimizers returned no optimizer")
    for opt in optimizers:
        if not isinstance(opt, Optimizer):
            raise ValueError(f"expected a torch.optim.Optimizer, got {type(opt).__name__}")
    return optimizers, schedulers


def current_lr(optimizers: list[Optimizer]) -> float:
    """Learning rate of the first parameter group of the first optimiser, for logging."""
    return float(optimizers[0].param_groups[0]["lr"])


def grad_norm_clip(params, max_norm: float) -> torch.Tensor:
    """Clip the global L2 norm of the gradients in place; returns the norm (a device tensor)."""
    return torch.nn.utils.clip_grad_norm_(params, max_norm)
