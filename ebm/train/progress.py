"""What a fit shows the user: one progress bar for the whole fit, then a one-line summary.

The bar is redrawn at metric flushes only (the trainer's one host sync), never per step: it
shows the values the flush has just copied to the host, so it costs no extra synchronisation.
While a bar is shown the trainer also flushes when :data:`REFRESH_SECONDS` have passed since the
last flush (a ``time.monotonic()`` check per step, host-only), so a slow model's loss still
shows at a human rate.
"""

from __future__ import annotations

import math
import os
import sys
from typing import TextIO

__all__ = [
    "REFRESH_SECONDS",
    "ProgressBar",
    "fit_summary",
    "format_summary",
    "planned_steps",
    "progress_enabled",
    "progress_stream",
]

REFRESH_SECONDS = 0.5  # while a bar is shown, flush (and redraw) at least this often
_MAX_TERMS = 3  # loss terms shown beside the bar


def _under_ci() -> bool:
    """True when the CI environment variable is set to anything but "", "0", "false" or "no"."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_stream(progress: bool | str) -> TextIO | None:
    """Where the bar and the summary are written, or None when nothing is shown.

    progress: ``"auto"`` shows them on standard error when it is a terminal (else on standard
    output when that one is), unless the ``CI`` environment variable is set or ``TERM=dumb``;
    ``True`` always shows them (on the terminal among stderr/stdout, else on stderr);
    ``False`` never does.
    """
    if progress is False:
        return None
    terminal = next((s for s in (sys.stderr, sys.stdout) if _is_terminal(s)), None)
    if progress == "auto":
        if terminal is None or _under_ci() or os.environ.get("TERM") == "dumb":
            return None
        return terminal
    return terminal or sys.stderr


def progress_enabled(progress: bool | str) -> bool:
    """Whether a fit with this ``progress`` setting shows a bar (see :func:`progress_stream`)."""
    return progress_stream(progress) is not None


def planned_steps(max_epochs: int | None, max_steps: int | None, n_batches: int | None):
    """Steps the fit will run unless stopped early: the smaller of ``max_steps`` and
    ``max_epochs * n_batches`` (None when neither is known, e.g. a DataLoader without length)."""
    limits = [max_steps] if max_steps is not None else []
    if max_epochs is not None and n_batches is not None:
        limits.append(max_epochs * n_batches)
    return min(limits) if limits else None


def _shown_terms(terms: dict[str, float]) -> dict[str, float]:
    """The loss first, then other terms named ``*loss``, at most :data:`_MAX_TERMS`."""
    names = [k for k in terms if k == "loss"]
    names += [k for k in terms if k != "loss" and k.endswith("loss")]
    return {k: terms[k] for k in names[:_MAX_TERMS]}


class ProgressBar:
    """One tqdm bar for the whole fit, counted in steps (batches), left on screen at the end.

    total: planned steps (None: unknown, the bar then counts without an ETA). initial: steps
    already done (a resumed fit). max_epochs: shown as ``epoch=e/max_epochs``. stream: the
    text stream to draw on (see :func:`progress_stream`).
    """

    def __init__(
        self, total: int | None, initial: int, max_epochs: int | None, stream: TextIO
    ) -> None:
        from tqdm.auto import tqdm

        self.max_epochs = max_epochs
        self._postfix: dict[str, str] = {}
        self._bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            file=stream,
            dynamic_ncols=True,
            leave=True,
            smoothing=0.1,
        )

    def show(
        self,
        step: int,
        epoch: int | None = None,
        terms: dict[str, float] | None = None,
        **extra: float,
    ) -> None:
        """Move the bar to ``step`` (steps done); show ``epoch`` (0-based index of the epoch
        the shown values come from; None keeps the shown one), the flushed ``terms`` (host
        floats) and ``extra`` values to keep showing, e.g. ``val_loss``."""
        if epoch is not None:
            epochs = f"/{self.max_epochs}" if self.max_epochs is not None else ""
            self._postfix["epoch"] = f"{epoch + 1}{epochs}"
        for name, value in {**_shown_terms(terms or {}), **extra}.items():
            self._postfix[name] = f"{value:.4g}"
        self._bar.set_postfix(self._postfix, refresh=False)
        if step > self._bar.n:
            self._bar.update(step - self._bar.n)  # redraws at most every mininterval (0.1 s)

    def close(self) -> None:
        """Draw the final state and leave the bar on screen."""
        self._bar.close()


def fit_summary(
    trainer, steps_run: int, seconds: float, n_batches: int | None, first_row: int = 0
) -> dict:
    """The numbers of a finished fit (``trainer.summary``).

    trainer: the Trainer after fit. steps_run: steps taken by this call of fit. seconds: its
    wall time. n_batches: batches per epoch (None: unknown). first_row: the first index of
    ``trainer.history`` written by this call (rows restored from a checkpoint come before).

    Keys: ``steps`` (total, resumed ones included), ``steps_run`` (by this call of fit),
    ``epochs`` (completed epochs plus the fraction of an interrupted one), ``seconds`` (wall
    time of this call), ``steps_per_second`` (steps_run / seconds), ``loss`` (the mean training
    loss over the last epoch, partial or not), ``val_loss`` (the latest; both from this
    call's rows only, None if it logged none), ``checkpoint`` (path of ``last.pt`` as a
    string, or None) and ``stopped_by`` ("max_steps", "max_epochs" or "callback").
    """
    epochs = float(trainer.epoch)
    if trainer._batch and n_batches:
        epochs += trainer._batch / n_batches
    epoch_rows = [row for row in trainer.history[first_row:] if "batch" not in row]
    loss = next((row["loss"] for row in reversed(epoch_rows) if "loss" in row), None)
    val_loss = next((row["val_loss"] for row in reversed(epoch_rows) if "val_loss" in row), None)
    if trainer.max_steps is not None and trainer.step >= trainer.max_steps:
        stopped_by = "max_steps"
    elif trainer.max_epochs is not None and trainer.epoch >= trainer.max_epochs:
        stopped_by = "max_epochs"
    else:
        stopped_by = "callback"
    last = trainer.last_checkpoint
    return {
        "steps": trainer.step,
        "steps_run": steps_run,
        "epochs": epochs,
        "seconds": seconds,
        "steps_per_second": steps_run / seconds if seconds > 0 else math.inf,
        "loss": loss,
        "val_loss": val_loss,
        "checkpoint": str(last) if last is not None else None,
        "stopped_by": stopped_by,
    }


def format_summary(summary: dict) -> str:
    """One line for the end of a fit, e.g. ``fit: 300 steps, 3 epochs in 1.2 s, 250 steps/s;
    loss 0.0213 (last epoch's mean); val_loss 0.0311; checkpoint runs/mlp/last.pt``.

    summary: a dict from :func:`fit_summary`.
    """
    epochs = summary["epochs"]
    epochs_text = f"{epochs:g}" if epochs == int(epochs) else f"{epochs:.2f}"
    resumed = summary["steps"] - summary["steps_run"]
    steps = f"{summary['steps']} step{'s' * (summary['steps'] != 1)}"
    steps += f" ({resumed} before resuming)" if resumed else ""
    parts = [
        f"fit: {steps}, {epochs_text} epoch{'s' * (epochs != 1)} in "
        f"{_duration(summary['seconds'])}, {summary['steps_per_second']:.3g} steps/s"
    ]
    if summary["loss"] is not None:
        parts.append(f"loss {summary['loss']:.4g} (last epoch's mean)")
    if summary["val_loss"] is not None:
        parts.append(f"val_loss {summary['val_loss']:.4g}")
    if summary["stopped_by"] == "callback":
        parts.append("stopped early by a callback")
    parts.append(
        f"checkpoint {summary['checkpoint']}" if summary["checkpoint"] else "no checkpoint"
    )
    return "; ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
