"""Callbacks: objects whose hook methods the trainer calls at fixed points of ``fit``.

Hooks, in the order a ``Trainer.fit`` calls them:

1. ``on_fit_start`` once, before the first step;
2. per epoch: ``on_epoch_start``; ``on_step_end`` after every training step (with
   ``on_checkpoint`` after it when ``ckpt_every_n_steps`` saves at that step);
   ``on_validation_end`` when the epoch validates; ``on_epoch_end``; then ``on_checkpoint``
   when the epoch's checkpoint is written;
3. ``on_fit_end`` once, when training has ended without an error.

Every hook receives the trainer and the model (the user's ``nn.Module`` on its device, never
the DistributedDataParallel wrapper); override the ones you need. Several callbacks are called
in the order of ``Trainer(callbacks=[...])``. A callback stops training by setting
``trainer.should_stop = True``: the trainer checks it after every step and before every epoch.

Under DDP (torchrun) every hook runs on every rank, except ``on_checkpoint``, which runs on
rank 0 only (the rank that writes). ``metrics`` are averaged over the ranks, so they are the
same everywhere; a step's ``outputs`` are the rank's own. A callback that stops training must
decide the same way on every rank (from ``metrics``, say), or the ranks wait for each other.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

from ebm._checks import check_choice, check_int, check_positive, check_real

__all__ = ["Callback", "EarlyStopping", "RestartOnDivergence"]

_MODES = ("min", "max")


class Callback:
    """Base class of the trainer's callbacks: every hook is a no-op; override the ones you need.

    Each hook is called as ``hook(trainer, model, ...)``: trainer is the running
    :class:`~ebm.train.Trainer` (``trainer.step``, ``trainer.epoch``, ``trainer.history``,
    ``trainer.rank``, ``trainer.should_stop``, ...), model the ``nn.Module`` being trained, on
    the trainer's device (unwrapped under DDP). Hooks run on the host between steps; reading a
    device tensor in one (``outputs["loss"].item()``) is a host sync, paid at every call.

    ``state_dict``/``load_state_dict`` carry the callback's own state through checkpoints, so a
    resumed fit (``fit(..., resume=True)``) continues it where it stopped.

    A skeleton (every hook is optional):

        class PrintLoss(Callback):
            def __init__(self):
                self.best = float("inf")

            def on_epoch_end(self, trainer, model, metrics):
                self.best = min(self.best, metrics["loss"])
                if trainer.rank == 0:
                    print(f"epoch {int(metrics['epoch'])}: loss {metrics['loss']:.4g}")

            def state_dict(self):
                return {"best": self.best}

            def load_state_dict(self, state):
                self.best = float(state["best"])

        Trainer(max_epochs=5, callbacks=[PrintLoss()]).fit(model, data)
    """

    def on_fit_start(self, trainer, model) -> None:
        """Called once per ``fit``, on every rank, before the first step.

        trainer, model: see :class:`Callback`. The model is on its device, the optimisers are
        configured and, when resuming, the checkpoint is restored: ``trainer.step``,
        ``trainer.epoch``, ``trainer.history`` and this callback's state (``load_state_dict``)
        are the checkpoint's.
        """

    def on_epoch_start(self, trainer, model) -> None:
        """Called at the start of every epoch, on every rank, before its first step.

        trainer, model: see :class:`Callback`; ``trainer.epoch`` is the epoch's 0-based index.
        Not called for an epoch that a resumed fit takes up mid-way: the interrupted run did.
        """

    def on_step_end(self, trainer, model, outputs) -> None:
        """Called after every training step (one batch), on every rank.

        trainer, model: see :class:`Callback`; ``trainer.step`` already counts this batch, and
        the optimiser update, the EMA update and step-interval schedulers have run (when the
        step ends an accumulation window). outputs: the dict of what ``training_step``
        returned (``{"loss": loss}`` for a bare tensor; ``{}`` for a batch that manual
        optimisation abandoned), detached device tensors of this rank's batch: reading them
        syncs. A batch that ``nan_policy="skip"`` skipped is reported too, with its non-finite
        values. Called before the step's log flush and its ``ckpt_every_n_steps`` checkpoint.
        """

    def on_validation_end(self, trainer, model, metrics: dict[str, float]) -> None:
        """Called at the end of an epoch that validates, on every rank, before ``on_epoch_end``.

        trainer, model: see :class:`Callback`. metrics: ``{"val_<term>": float}``, each term of
        ``validation_step`` averaged over the validation data (and the ranks), with the EMA
        weights when ``ema_eval`` applies. Validation runs when ``val_data`` is given, every
        ``val_every_n_epochs`` epochs.
        """

    def on_epoch_end(self, trainer, model, metrics: dict[str, float]) -> None:
        """Called at the end of every epoch, on every rank, before the epoch's checkpoint.

        trainer, model: see :class:`Callback`. metrics: the epoch's history row, Python numbers:
        ``epoch`` (its 0-based index), ``step``, the means of the training terms over the
        epoch (and the ranks), ``lr``, ``val_*`` when it validated, ``skipped`` under
        ``nan_policy="skip"``, and ``epoch_time`` (seconds). Also called for the last, partial
        epoch when ``max_steps`` or ``should_stop`` ends training mid-epoch. ``trainer.epoch``
        already counts the epoch if it is complete. State changed here is in that checkpoint.
        """

    def on_checkpoint(self, trainer, model, path: Path) -> None:
        """Called after a checkpoint is written, on rank 0 only.

        trainer, model: see :class:`Callback`. path: the ``Path`` of the new numbered file,
        ``<ckpt_dir>/stepNNNNNNNN.pt``, complete and already named by ``last.pt``
        (``trainer.last_checkpoint``). Older numbered files beyond ``keep_last`` are gone.
        """

    def on_fit_end(self, trainer, model) -> None:
        """Called once, on every rank, when training has ended without an error.

        trainer, model: see :class:`Callback`. The logs are closed and ``trainer.summary`` is
        set (and printed, when progress is shown). Not called when ``fit`` raises.
        """

    def state_dict(self) -> dict:
        """The callback's state, saved in every checkpoint (the base class: ``{}``).

        Return a dict of tensors, numbers, strings, lists and dicts only: checkpoints are
        loaded with ``weights_only=True``, which refuses other objects. Called on every rank at
        every checkpoint (rank 0's is written). Returns a dict.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` returned (the base class: does nothing).

        state: the dict from the checkpoint (rank 0's, on every rank). Called by
        ``fit(..., resume=True)`` before ``on_fit_start``, when the trainer has as many
        callbacks as the checkpoint recorded: they are matched by position in ``callbacks``
        (with another number, no callback's state is loaded). Called again with the earlier
        state if loading the checkpoint fails half-way.
        """


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    monitor: a key of the epoch history row, e.g. "val_loss" (default) or "loss"; a key the
        row lacks is a ValueError at the first epoch end.
    patience: epochs without improvement that are tolerated, an int >= 0 (default 5): training
        stops at the end of the ``patience + 1``-th epoch in a row without one (0: the first).
    min_delta: the least change that counts as an improvement, a finite real >= 0 (default 0).
    mode: "min" (default: lower is better, as for a loss) or "max" (higher is better, e.g. an
        accuracy). An improvement is ``value < best - min_delta`` ("min") or
        ``value > best + min_delta`` ("max"); a NaN value never improves.

    After a stop, ``stopped_epoch`` is the 0-based index of the last epoch trained; ``best``
    holds the best value seen and ``wait`` the epochs since it. Under DDP the monitored value is
    averaged over the ranks, so every rank stops at the same epoch.
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
        """Compare ``metrics[monitor]`` with the best so far; set ``trainer.should_stop``
        once ``patience`` epochs in a row brought no improvement.

        trainer: the running Trainer. model: the model (unused). metrics: the epoch's history
        row (see :meth:`Callback.on_epoch_end`).
        """
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
        """``{"best": float, "wait": int}``: the best value seen and the epochs since it."""
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        """Take back ``best`` and ``wait`` from ``state`` (a dict from :meth:`state_dict`)."""
        self.best, self.wait = float(state["best"]), int(state["wait"])


class RestartOnDivergence(Callback):
    """Restart from the last good checkpoint when training diverges: reload its weights and
    optimiser state, lower the learning rate and re-seed the replay buffers of persistent chains.

    EBMs trained with persistent SGLD (``ebm.models.EBM``, ``ebm.models.JEM``) sometimes blow up:
    the samples drift to where the energy is unbounded, the energies explode, then NaN. After
    every step this callback reads the step's logged terms (one host sync per step); when one of
    them is non-finite or larger than ``threshold`` in absolute value it

    1. loads ``trainer.last_checkpoint`` (``<ckpt_dir>/last.pt``): the model's weights and
       buffers, the optimisers' states, the EMA and the GradScaler (the data position, step
       counter, history and RNG go on from where they are: training continues, not rewinds);
    2. multiplies every optimiser's learning rate by ``lr_factor`` (and the ``base_lrs`` of
       the schedulers, so a schedule keeps the lower rate), compounding over restarts;
    3. with ``reset_buffers``, re-draws every ``ebm.sampling.ReplayBuffer`` in the model from
       its initialisation noise (the chains' states come back from the checkpoint otherwise);
    4. drops the diverged step's logged terms (so ``nan_policy="raise"`` does not raise for
       them) and warns (a ``RuntimeWarning`` naming the step, the terms and the checkpoint).

    threshold: the largest |value| a monitored term may take, a finite real > 0 (default 1e6;
        the JEM authors stopped at |loss| > 1e8). A NaN or inf always counts as divergence.
    monitor: the names of the terms to watch (a tuple of strings), or None (default) for every
        term ``training_step`` returns (``loss``, and JEM's and EBM's ``e_data``/``e_model``).
    lr_factor: the learning rate's multiplier at each restart, in (0, 1] (default 0.5).
    max_restarts: restarts allowed in one fit, an int >= 0 (default 3); one more divergence
        raises ``FloatingPointError``, as does a divergence before the first checkpoint.
    reset_buffers: re-seed replay buffers at a restart (default True).

    Needs ``Trainer(ckpt_dir=...)``; save often enough that a good checkpoint exists
    (``ckpt_every_n_steps``). After fit, ``restarts`` lists {"step", "terms", "checkpoint",
    "lr_factor"} per restart (also kept in checkpoints, so a resumed fit counts on). Under DDP
    the ranks decide together: any rank's divergence restarts every rank.

        trainer = Trainer(max_epochs=50, ckpt_dir="runs/jem", ckpt_every_n_steps=200,
                          callbacks=[RestartOnDivergence(threshold=1e4)])
    """

    def __init__(
        self,
        threshold: float = 1e6,
        monitor: tuple[str, ...] | None = None,
        lr_factor: float = 0.5,
        max_restarts: int = 3,
        reset_buffers: bool = True,
    ):
        self.threshold = float(check_positive("threshold", threshold))
        if monitor is not None:
            if isinstance(monitor, str):
                monitor = (monitor,)
            if not isinstance(monitor, (tuple, list)) or not all(
                isinstance(m, str) for m in monitor
            ):
                raise ValueError(f"monitor must be None or a tuple of term names, got {monitor!r}")
            monitor = tuple(monitor)
        self.monitor = monitor
        self.lr_factor = float(
            check_real("lr_factor", lr_factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
        )
        self.max_restarts = check_int("max_restarts", max_restarts, minimum=0)
        self.reset_buffers = check_choice("reset_buffers", reset_buffers, (False, True))
        self.restarts: list[dict] = []

    def on_fit_start(self, trainer, model) -> None:
        """Refuse a trainer without a ``ckpt_dir`` (there would be nothing to restart from).

        trainer, model: see :class:`Callback`.
        """
        if trainer.ckpt_dir is None:
            raise ValueError(
                "RestartOnDivergence restarts from the trainer's checkpoints: give the Trainer a "
                "ckpt_dir (and ckpt_every_n_steps to save often enough)"
            )

    def _diverged(self, trainer, outputs: dict) -> dict[str, float]:
        names = [k for k in outputs if self.monitor is None or k in self.monitor]
        if not names and trainer.world_size == 1:  # nothing to read (a skipped batch)
            return {}
        device = trainer.device or torch.device("cpu")
        stacked = torch.stack(
            [torch.as_tensor(outputs[k], device=device).detach().float().reshape(()) for k in names]
            or [torch.zeros((), device=device)]
        )[: len(names)]
        bad = ~torch.isfinite(stacked) | (stacked.abs() > self.threshold)
        flags = torch.cat([bad.float(), stacked])
        if trainer.world_size > 1:  # every rank restarts, or none
            any_bad = bad.any().float().reshape(1)
            torch.distributed.all_reduce(any_bad, op=torch.distributed.ReduceOp.MAX)
            flags = torch.cat([flags, any_bad])
        host = flags.tolist()  # the one host sync
        n = len(names)
        found = {k: host[n + i] for i, k in enumerate(names) if host[i]}
        if not found and trainer.world_size > 1 and host[-1]:
            found = {"(another rank)": float("nan")}
        return found

    def on_step_end(self, trainer, model, outputs) -> None:
        """Check the step's terms; on divergence, restart from the last checkpoint.

        trainer, model: see :class:`Callback`. outputs: the step's logged terms.
        """
        bad = self._diverged(trainer, outputs)
        if bad:
            self._restart(trainer, model, bad)

    def _restart(self, trainer, model, bad: dict[str, float]) -> None:
        from ebm.sampling import ReplayBuffer
        from ebm.train.checkpoint import load_checkpoint

        terms = ", ".join(f"{k} = {v:.4g}" for k, v in bad.items())
        where = f"training diverged at step {trainer.step} ({terms}; threshold {self.threshold:g})"
        path = trainer.last_checkpoint
        if path is None:
            raise FloatingPointError(
                f"{where} before the first checkpoint: nothing to restart from. Save earlier "
                "(Trainer(ckpt_every_n_steps=...)), lower the learning rate, or raise the "
                "energy penalty (alpha)."
            )
        if len(self.restarts) >= self.max_restarts:
            raise FloatingPointError(
                f"{where}, after {len(self.restarts)} restart(s) (max_restarts="
                f"{self.max_restarts}); the last good checkpoint {path} is intact. Lower the "
                "learning rate or raise the energy penalty (alpha)."
            )
        state = load_checkpoint(path, map_location=trainer.device)
        lrs = [[g["lr"] for g in opt.param_groups] for opt in trainer._optimizers]
        model.load_state_dict(state["model"])
        for opt, saved, rates in zip(trainer._optimizers, state["optimizers"], lrs):
            opt.load_state_dict(saved)
            for group, lr in zip(opt.param_groups, rates):
                group["lr"] = lr * self.lr_factor
                if "initial_lr" in group:
                    group["initial_lr"] *= self.lr_factor
        for sched in trainer._schedulers:
            base = getattr(sched.scheduler, "base_lrs", None)
            if base is not None:
                sched.scheduler.base_lrs = [b * self.lr_factor for b in base]
        scaler = trainer._precision.scaler
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        if trainer.ema is not None and state.get("ema") is not None:
            trainer.ema.load_state_dict(state["ema"])
        if self.reset_buffers:
            for module in model.modules():
                if isinstance(module, ReplayBuffer):
                    module.reset()
        # the diverged step's terms are not logged (nor checked by nan_policy="raise")
        records = trainer._buffer.records
        records[:] = [r for r in records if r[0] != trainer.step]
        self.restarts.append(
            {
                "step": trainer.step,
                "terms": dict(bad),
                "checkpoint": str(path),
                "lr_factor": self.lr_factor ** (len(self.restarts) + 1),
            }
        )
        warnings.warn(
            f"{where}: restarted from {path} with the learning rate × {self.lr_factor:g}"
            + (" and fresh replay buffers" if self.reset_buffers else "")
            + f" (restart {len(self.restarts)} of at most {self.max_restarts})",
            RuntimeWarning,
            stacklevel=2,
        )

    def state_dict(self) -> dict:
        """``{"restarts": [...]}``: the restarts so far (step, terms, checkpoint, lr factor)."""
        return {"restarts": [dict(r, terms=dict(r["terms"])) for r in self.restarts]}

    def load_state_dict(self, state: dict) -> None:
        """Take back the restarts so far from ``state`` (a dict from :meth:`state_dict`)."""
        self.restarts = [dict(r) for r in state["restarts"]]
