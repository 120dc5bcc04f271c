"""Callbacks: objects whose hook methods the trainer calls at fixed points of ``fit``.

Hooks, in the order they fire: ``on_fit_start``, then per epoch ``on_epoch_start``,
``on_step_end`` after every training step, ``on_validation_end`` after validation,
``on_epoch_end``; ``on_checkpoint`` after a checkpoint file is complete; ``on_fit_end``.
Every hook receives the trainer and the (unwrapped) model; override the ones you need.
A callback stops training by setting ``trainer.should_stop = True``.
"""

from __future__ import annotations

import math

from ebm._checks import check_real

_MODES = ("min", "max")


class Callback:
    """Base class: every hook is a no-op. ``state_dict``/``load_state_dict`` go into checkpoints."""

    def on_fit_start(self, trainer, model) -> None: ...

    def on_epoch_start(self, trainer, model) -> None: ...

    def on_step_end(self, trainer, model, outputs) -> None:
        """``outputs``: what training_step returned (device tensors: reading them syncs)."""

    def on_validation_end(self, trainer, model, metrics: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer, model, metrics: dict[str, float]) -> None:
        """``metrics``: the epoch's history row (training means, validation, lr)."""

    def on_checkpoint(self, trainer, model, path) -> None: ...

    def on_fit_end(self, trainer, model) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    monitor: a key of the epoch history row, e.g. "val_loss" or "loss". patience: an int >= 0;
    min_delta: the least improvement that counts, a finite real >= 0.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative int, got {patience!r}")
        check_real("min_delta", min_delta, 0.0)
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch: int | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, model, metrics):
        if self.monitor not in metrics:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not logged; "
                f"logged: {sorted(metrics)}"
            )
        value = metrics[self.monitor]
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = int(metrics.get("epoch", -1))
            trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])
