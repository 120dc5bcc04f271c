"""The one Trainer every model and recipe trains through.

A trainable model is an ``nn.Module`` with ``training_step(batch)`` returning a loss Tensor or a
dict ``{"loss": tensor, **metrics}``, and ``configure_optimizers()``; ``validation_step(batch)``
is optional. With ``manual_optimization = True`` the trainer calls
``training_step(batch, optimize)`` and ``optimize(loss, index=0)`` performs one update.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ebm._checks import (
    check_choice,
    check_int,
    check_positive,
    check_real,
    make_generator,
    module_dtype,
)
from ebm.train import distributed
from ebm.train.callbacks import Callback
from ebm.train.checkpoint import CheckpointDir, load_checkpoint
from ebm.train.data import Batches
from ebm.train.devices import resolve_device
from ebm.train.ema import EMA
from ebm.train.logs import (
    NonFiniteGradientError,
    NonFiniteLossError,
    NonFiniteStateError,
    RunLog,
    StepBuffer,
    first_non_finite,
)
from ebm.train.optim import configure, current_lr
from ebm.train.precision import Precision
from ebm.train.progress import (
    REFRESH_SECONDS,
    ProgressBar,
    fit_summary,
    format_summary,
    planned_steps,
    progress_stream,
)
from ebm.train.state import capture, first_non_finite_tensor, restore, run_config
from ebm.train.steps import Stepper
from ebm.train.validation import validate

__all__ = ["Trainer"]

_NAN_POLICIES = ("raise", "skip")
_FLUSH_AT_LEAST_EVERY = 1000  # steps; bounds the device-side metric buffer


@contextlib.contextmanager
def _seeded_global_rng(seed: int | None, rank: int, device: torch.device):
    """Seed torch's global RNG with ``seed + rank`` for the duration of fit, then restore it."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed + rank)
        yield


def _check_model(model) -> None:
    contract = (
        "a trainable model is an nn.Module defining training_step(self, batch) -> loss Tensor "
        "or {'loss': tensor, **metrics}, and configure_optimizers(self) -> optimizer(s) or "
        "{'optimizer': ..., 'lr_scheduler': ...}; with manual_optimization = True it is "
        "training_step(self, batch, optimize)"
    )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}: {contract}")
    for hook in ("training_step", "configure_optimizers"):
        if not callable(getattr(model, hook, None)):
            raise TypeError(f"{type(model).__name__} has no {hook}(): {contract}")


def _positive_int_or_none(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")


class Trainer:
    """Fits a model: batching, devices, precision, optimisation extras, logs, checkpoints, DDP.

    Args:
        max_epochs: passes over the training data (a positive int, or None with max_steps).
        batch_size: samples per batch on each process (None: the whole data in one batch).
        device: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".
        precision: "32", "bf16" (autocast) or "16-mixed" (autocast + GradScaler).
        seed: seeds the private generator of the data order and, for the duration of fit,
            torch's global RNG (plus the rank under DDP) for randomness inside training_step;
            the caller's global RNG state is restored when fit returns.
        ckpt_dir: folder for checkpoints (stepNNNNNNNN.pt and last.pt); also the default run
            folder for metrics.csv. A fit refuses to start in a folder that already holds an
            earlier run's checkpoints (last.pt or step files) unless ``fit(..., resume=True)``
            continues it or ``overwrite=True`` replaces it.
        nan_policy: "raise" (error naming step, epoch and term; checked at every flush, before
            any checkpoint) or "skip" (skip the batch, one host sync per step, count in logs).
        grad_clip: max global gradient L2 norm (None: no clipping).
        progress: "auto" (default) shows one progress bar for the whole fit, counted in steps,
            with the ETA, the rate, the epoch and the latest loss (and val_loss), then a
            one-line summary (see ``summary``); only when stderr or stdout is a terminal, the
            CI environment variable is unset (or "0"/"false") and TERM is not "dumb". True
            always shows them (on stderr when no stream is a terminal); False never does.
            The bar is redrawn at metric flushes, never per step; while it is shown a flush
            also happens every 0.5 s (a host-side clock check), so the loss shown is fresh.
        max_steps: stop after this many steps (batches) in total, or at max_epochs, whichever
            comes first.
        accumulate_grad_batches: micro-batches per optimiser update (automatic optimisation).
        ema_decay: keep an EMA of the weights in ``trainer.ema`` (a real in (0, 1), or None).
        ema_eval: validate with the EMA weights when there is an EMA.
        scheduler_interval: default stepping of LR schedulers, "epoch" or "step".
        ckpt_every_n_steps / ckpt_every_n_epochs: when to save (epochs default to 1 when
            ckpt_dir is given); both need a ckpt_dir.
        keep_last: numbered checkpoints kept, default 3 (an int >= 1; None keeps every one).
            last.pt always names the newest, so it is never 0. Ignored without a ckpt_dir.
        log_every_n_steps: step rows in history (None: epoch rows only); each is one flush.
        log_dir: run folder for metrics.csv and TensorBoard (default: ckpt_dir).
        tensorboard: "auto" (when installed and a run folder exists), True or False.
        callbacks: Callback objects, called in order.
        val_every_n_epochs: validation frequency, in epochs.
        shuffle: reshuffle the training data every epoch.
        drop_last: drop each epoch's last, incomplete batch.
        num_workers: worker processes for Datasets (an int >= 0).
        find_unused_parameters: passed to DistributedDataParallel.
        overwrite: let a fresh fit start in a ckpt_dir holding an earlier run's checkpoints;
            they are deleted when the new run writes its first checkpoint (until then they
            stay, so a run that fails early destroys nothing). Default False: refuse.
        compile: True runs ``training_step`` through ``torch.compile`` (under DDP, the DDP
            wrapper, as torch advises). The model itself is not wrapped: its state_dict keys
            (no ``_orig_mod.`` prefix), checkpoints, EMA and validation are those of eager
            training. The first steps pay the compilation (seconds to tens of seconds; again
            when a batch shape changes, e.g. a short last batch: use drop_last=True), so it
            pays off only on long fits of models whose step is many small operations; see
            the training guide. A ``torch.compile``'d module (an ``OptimizedModule``) given
            to fit is trained as its original module with compile on. Under manual
            optimisation each ``optimize`` call runs eagerly between compiled graphs (torch
            2.13 warns about a non-leaf ``.grad`` there). Default False.

    After fit: ``history`` (rows of logged metrics), ``summary`` (a dict: steps, steps_run,
    epochs, seconds, steps_per_second, loss, val_loss, checkpoint, stopped_by; see
    :func:`ebm.train.progress.fit_summary`), ``last_checkpoint``, ``step``, ``epoch``.
    """

    def __init__(
        self,
        max_epochs: int = 10,
        batch_size: int | None = 64,
        device: str | torch.device = "auto",
        precision: str = "32",
        seed: int | None = None,
        ckpt_dir: str | Path | None = None,
        nan_policy: str = "raise",
        grad_clip: float | None = None,
        progress: bool | str = "auto",
        max_steps: int | None = None,
        accumulate_grad_batches: int = 1,
        ema_decay: float | None = None,
        ema_eval: bool = True,
        scheduler_interval: str = "epoch",
        ckpt_every_n_steps: int | None = None,
        ckpt_every_n_epochs: int | None = None,
        keep_last: int | None = 3,
        log_every_n_steps: int | None = 50,
        log_dir: str | Path | None = None,
        tensorboard: bool | str = "auto",
        callbacks: list[Callback] | tuple = (),
        val_every_n_epochs: int = 1,
        shuffle: bool = True,
        drop_last: bool = False,
        num_workers: int = 0,
        find_unused_parameters: bool = False,
        overwrite: bool = False,
        compile: bool = False,
    ):
        _positive_int_or_none("max_epochs", max_epochs)
        _positive_int_or_none("max_steps", max_steps)
        if max_epochs is None and max_steps is None:
            raise ValueError("give max_epochs or max_steps (both are None)")
        _positive_int_or_none("accumulate_grad_batches", accumulate_grad_batches)
        _positive_int_or_none("ckpt_every_n_steps", ckpt_every_n_steps)
        _positive_int_or_none("ckpt_every_n_epochs", ckpt_every_n_epochs)
        _positive_int_or_none("log_every_n_steps", log_every_n_steps)
        _positive_int_or_none("val_every_n_epochs", val_every_n_epochs)
        _positive_int_or_none("keep_last", keep_last)  # 0 would delete the file last.pt names
        check_int("num_workers", num_workers, minimum=0)
        if ema_decay is not None:
            check_real("ema_decay", ema_decay, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if ckpt_dir is None and (ckpt_every_n_steps or ckpt_every_n_epochs):
            raise ValueError("ckpt_every_n_steps and ckpt_every_n_epochs need a ckpt_dir")
        check_choice("nan_policy", nan_policy, _NAN_POLICIES)
        check_choice("scheduler_interval", scheduler_interval, ("epoch", "step"))
        check_choice("progress", progress, (True, False, "auto"))
        check_choice("tensorboard", tensorboard, (True, False, "auto"))
        check_choice("overwrite", overwrite, (True, False))
        check_choice("compile", compile, (False, True))
        if grad_clip is not None:
            check_positive("grad_clip", grad_clip)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        Precision(precision, torch.device("cpu"))  # validates the name early
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ValueError(f"callbacks must be Callback instances, got {type(cb).__name__}")
        self.max_epochs, self.max_steps, self.batch_size = max_epochs, max_steps, batch_size
        self.device_name, self.precision_name, self.seed = device, precision, seed
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
        self.nan_policy, self.grad_clip, self.progress = nan_policy, grad_clip, progress
        self.accumulate, self.ema_decay, self.ema_eval = (
            accumulate_grad_batches,
            ema_decay,
            ema_eval,
        )
        self.scheduler_interval = scheduler_interval
        self.ckpt_every_n_steps = ckpt_every_n_steps
        self.ckpt_every_n_epochs = ckpt_every_n_epochs or (1 if ckpt_dir is not None else None)
        self.keep_last, self.log_every_n_steps = keep_last, log_every_n_steps
        self.log_dir = Path(log_dir) if log_dir is not None else self.ckpt_dir
        self.tensorboard, self.callbacks = tensorboard, list(callbacks)
        self.val_every_n_epochs, self.shuffle, self.drop_last = (
            val_every_n_epochs,
            shuffle,
            drop_last,
        )
        self.num_workers, self.find_unused_parameters = num_workers, find_unused_parameters
        self.overwrite, self.compile = overwrite, compile
        self._ckpt = CheckpointDir(self.ckpt_dir, keep_last) if self.ckpt_dir is not None else None
        self.history: list[dict[str, float]] = []
        self.device: torch.device | None = None
        self.ema: EMA | None = None
        self.epoch = self.step = self.updates = 0
        self.rank, self.world_size = 0, 1
        self.should_stop = False
        self.skipped = 0
        self.last_checkpoint: Path | None = None
        self.summary: dict | None = None
        self._bar: ProgressBar | None = None

    # ---------------------------------------------------------------------------------------
    def fit(self, model: nn.Module, train_data, val_data=None, resume: bool = False) -> Trainer:
        """Train ``model`` on ``train_data`` (validating on ``val_data``); returns the trainer.

        model: an nn.Module with ``training_step`` and ``configure_optimizers`` (see the module
        docstring); ``validation_step`` too when val_data is given.

        train_data / val_data: a Tensor or numpy array, a tuple/list of them (batches are lists
        ``[xb, yb, ...]``), a Dataset with ``__len__`` or a DataLoader. Numpy arrays become
        tensors of their own dtype (as ``torch.as_tensor`` reads them; read-only arrays are
        copied) and then follow the tensor rules: floating data are cast to the dtype of the
        model's parameters (float64 data train a float32 model in float32); integer data
        (labels) stay integers and bool data stay bools. Data with NaN or inf values are
        rejected before training; other types (nested Python lists, object or string arrays)
        raise a ValueError naming the argument and the type given.

        resume: continue from ``ckpt_dir/last.pt`` when it exists (a fresh start when the
        folder holds no checkpoint; step files without last.pt are refused, see overwrite),
        exactly where it stopped, mid-epoch included. The checkpoint must come from the same
        set-up (data size, batch size, world size, accumulation, precision, EMA, model
        architecture, optimisers and schedulers): a difference raises a ValueError naming it
        before anything changes, and a failed load leaves the model and optimisers untouched.

        Returns the trainer; ``trainer.summary`` holds the fit's numbers, also printed as one
        line after the progress bar when progress is shown.
        """
        started = time.perf_counter()
        compile = self.compile
        if _is_compiled_module(model):
            # torch.compile(model) compiles forward only, and prefixes every state_dict key
            # with "_orig_mod.": train the original module, compiling its training_step
            model, compile = model._orig_mod, True
        _check_model(model)
        if val_data is not None and not callable(getattr(model, "validation_step", None)):
            raise TypeError(f"val_data was given but {type(model).__name__} has no validation_step")
        if resume and self._ckpt is None:
            raise ValueError("resume=True needs a ckpt_dir to resume from")
        manual = bool(getattr(model, "manual_optimization", False))
        if manual and self.accumulate > 1:
            raise ValueError("accumulate_grad_batches > 1 needs automatic optimisation")
        device = distributed.local_device(resolve_device(self.device_name))
        self.rank, self.world_size, created = distributed.setup(device)
        if created:
            atexit.register(_destroy_process_group)
        self.device, self.is_main = device, self.rank == 0
        if self._ckpt is not None:
            if self.is_main:
                self._ckpt.check_writable()
            self._refuse_to_overwrite(bool(resume), device)
        saved = None  # read before anything changes: a bad file fails here, model untouched
        if resume and self._ckpt.last.exists():
            saved = load_checkpoint(self._ckpt.last, map_location=device)
        float_dtype = module_dtype(model)
        if self.log_dir is not None and self.is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        train = Batches(
            train_data,
            self.batch_size,
            self.shuffle,
            device,
            self.rank,
            self.world_size,
            self.drop_last,
            self.num_workers,
            "train_data",
            float_dtype,
        )
        val = None
        if val_data is not None:
            val = Batches(
                val_data,
                self.batch_size,
                False,
                device,
                self.rank,
                self.world_size,
                False,
                self.num_workers,
                "val_data",
                float_dtype,
            )

        # `seed` seeds the global RNG for the randomness inside training_step (dropout, noise),
        # inside a fork: the caller's RNG state is given back when fit returns.
        with _seeded_global_rng(self.seed, self.rank, device):
            data_seed = self.seed
            if data_seed is None:  # every rank must draw the same data order
                data_seed = distributed.broadcast_int(int(torch.randint(2**62, ()).item()), device)
            self._data_gen, self._data_seed = make_generator(data_seed), data_seed

            model.to(device)
            optimizers, schedulers = configure(model, self.scheduler_interval)
            self._optimizers, self._schedulers = optimizers, schedulers
            self._precision = Precision(self.precision_name, device)
            self.ema = EMA(model, self.ema_decay) if self.ema_decay is not None else None
            stepper = Stepper(
                model,
                optimizers,
                self._precision,
                self.grad_clip,
                self.accumulate,
                self.nan_policy,
                self.world_size,
                device,
                self.find_unused_parameters,
                compile,
            )
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            self._log = RunLog(self.log_dir, self.tensorboard, self.is_main)
            self.history = self._log.history
            self._buffer = StepBuffer()
            self.epoch = self.step = self.skipped = 0
            self.updates = (
                0  # optimiser updates (steps count batches; they differ when accumulating)
            )
            self._batch = 0  # next batch index within the current epoch
            self._loader_rng = torch.get_rng_state()  # global RNG when a DataLoader epoch began
            self._epoch_sums: dict[str, float] = {}
            self._epoch_counts: dict[str, int] = {}
            self.should_stop = False
            self._run_config = run_config(self, train)
            if saved is not None:
                restore(self, model, saved)  # all or nothing: validated before it changes anything
                self.last_checkpoint = self._ckpt.last

            self._call("on_fit_start", model)
            first_step, first_row = self.step, len(self.history)
            stream = progress_stream(self.progress) if self.is_main else None
            n_batches = _safe_len(train)
            self._bar = None
            if stream is not None:
                total = planned_steps(self.max_epochs, self.max_steps, n_batches)
                self._bar = ProgressBar(total, self.step, self.max_epochs, stream)
            try:
                self._loop(model, train, val, stepper)
            finally:
                self._log.close()
                if self._bar is not None:
                    self._bar.close()
            self.summary = fit_summary(
                self, self.step - first_step, time.perf_counter() - started, n_batches, first_row
            )
            if stream is not None:
                print(format_summary(self.summary), file=stream, flush=True)
            self._call("on_fit_end", model)
            return self

    def _refuse_to_overwrite(self, resume: bool, device: torch.device) -> None:
        """Refuse to start over in a ckpt_dir holding an earlier run's checkpoints, unless
        resuming from its last.pt or ``overwrite=True`` (then they go at the first save)."""
        earlier = self._ckpt.earlier_run() if self.is_main else []
        resumable = resume and self._ckpt.last.exists()
        refused = bool(earlier) and not resumable and not self.overwrite
        if not distributed.broadcast_int(int(refused), device):  # every rank raises, or none
            self._ckpt.replace_at_first_save([] if resumable else earlier)
            return
        names = ", ".join(p.name for p in earlier[:3]) + (", ..." if len(earlier) > 3 else "")
        what = "continue that run" if self._ckpt.last.exists() else "continue (no last.pt here)"
        raise ValueError(
            f"ckpt_dir {str(self._ckpt.path)!r} already holds checkpoints of an earlier run "
            f"({names}), and this fit would write over them. Pass resume=True to fit() to "
            f"{what}, or overwrite=True to Trainer() to start afresh (the earlier checkpoints "
            "are deleted when this run saves its first), or choose another ckpt_dir."
        )

    # ---------------------------------------------------------------------------------------
    def _loop(self, model, train, val, stepper) -> None:
        bar = self._bar
        self._next_refresh = time.monotonic() + REFRESH_SECONDS
        updated_since_save = False
        while not self._done():
            epoch_started = time.perf_counter()
            resuming_mid_epoch = self._batch > 0
            if resuming_mid_epoch:
                self._data_gen.set_state(self._epoch_gen_state)
            else:
                self._epoch_gen_state = self._data_gen.get_state()
                self._epoch_sums, self._epoch_counts = {}, {}
                self._call("on_epoch_start", model)
            order = train.order(self._data_gen)
            positioned = None
            if train.loader is not None:
                if resuming_mid_epoch:
                    positioned = train.skip_loader(self._batch, self._loader_rng)
                else:
                    self._loader_rng = torch.get_rng_state()
            n_batches = _safe_len(train)
            model.train()
            worker_seed = (self._data_seed * 1_000_003 + self.epoch) % 2**63
            for batch in train.epoch(order, self._batch, positioned, worker_seed):
                b = self._batch
                if stepper.manual:
                    terms, updated, skipped = stepper.manual_step(batch)
                else:
                    last = n_batches is not None and b + 1 == n_batches
                    is_update = (b + 1) % self.accumulate == 0 or last
                    terms, updated, skipped = stepper.automatic(batch, is_update)
                self.step += 1
                self._batch += 1
                if skipped:
                    self.skipped += 1
                else:
                    self._buffer.add(self.step, self.epoch, b, terms, stepper.checks)
                if updated:
                    updated_since_save = True
                    self.updates += 1
                    if self.ema is not None:
                        self.ema.update(model)
                    for sched in self._schedulers:
                        if sched.interval == "step" and self.updates % sched.frequency == 0:
                            sched.step(self._last_metrics())
                if self.callbacks:
                    self._call("on_step_end", model, terms)
                log_now = self.log_every_n_steps and self.step % self.log_every_n_steps == 0
                if (
                    log_now
                    or len(self._buffer) >= _FLUSH_AT_LEAST_EVERY
                    or (bar is not None and time.monotonic() >= self._next_refresh)
                ):
                    self._flush()
                if self.ckpt_every_n_steps and updated and self.step % self.ckpt_every_n_steps == 0:
                    self._save(model)
                    updated_since_save = False
                if self.max_steps is not None and self.step >= self.max_steps:
                    self.should_stop = True
                if self.should_stop:
                    break
            if stepper.finish_window():  # a DataLoader of unknown length, or an early stop
                updated_since_save = True
                self.updates += 1
                if self.ema is not None:
                    self.ema.update(model)
            epoch_complete = n_batches is None or self._batch >= n_batches
            self._flush()
            row = self._end_epoch(model, val, time.perf_counter() - epoch_started)
            if epoch_complete:
                self.epoch += 1
                self._batch = 0
            if bar is not None and "val_loss" in row:
                bar.show(self.step, self.epoch - epoch_complete, val_loss=row["val_loss"])
            self._call("on_epoch_end", model, row)  # before saving: callback state included
            every = self.ckpt_every_n_epochs
            if (
                self._ckpt is not None
                and updated_since_save
                and ((epoch_complete and every and self.epoch % every == 0) or self._done())
            ):
                self._save(model)
                updated_since_save = False

    def _done(self) -> bool:
        if self.should_stop:
            return True
        if self.max_steps is not None and self.step >= self.max_steps:
            return True
        return self.max_epochs is not None and self.epoch >= self.max_epochs

    def _last_metrics(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}

    # ---------------------------------------------------------------------------------------
    def _flush(self) -> None:
        """The one host sync: copy buffered metrics, check them, log them, show them."""
        self._next_refresh = time.monotonic() + REFRESH_SECONDS
        rows = self._buffer.flush()
        if not rows:
            if self._bar is not None:
                self._bar.show(self.step)
            return
        if self.nan_policy == "raise":
            bad = first_non_finite(rows)
            if bad is not None:
                raise self._non_finite_error(*bad)
        lr = current_lr(self._optimizers)
        for step, epoch, batch, terms, _ in rows:
            for name, value in terms.items():
                self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + value
                self._epoch_counts[name] = self._epoch_counts.get(name, 0) + 1
            if self.log_every_n_steps and step % self.log_every_n_steps == 0:
                self._log.append({"epoch": epoch, "batch": batch, "step": step, **terms, "lr": lr})
        if self._bar is not None:
            self._bar.show(self.step, rows[-1][1], rows[-1][3])

    def _kept(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint was written"
        return f"the last good checkpoint {self.last_checkpoint} is intact"

    def _non_finite_error(self, step, epoch, batch, bad, terms) -> NonFiniteLossError:
        where = f"at step {step} (epoch {epoch}, batch {batch})"
        losses_finite = not any(k == "loss" or k.endswith(" loss") for k in bad)
        gradients = [k[: -len("gradient")].strip() for k in bad if k.endswith("gradient")]
        if losses_finite and gradients:
            loss = ", ".join(f"{k!r} = {v:.6g}" for k, v in terms.items()) or "finite"
            calls = f" in {', '.join(gradients)}" if any(gradients) else ""
            return NonFiniteGradientError(
                f"non-finite gradient {where}{calls}, while the loss was finite ({loss}). "
                f"The optimiser has applied it, so the weights in memory are no longer usable; "
                f"{self._kept()}. Look for an operation with an infinite derivative (sqrt or "
                "log at 0, a division by ~0), or use nan_policy='skip' to skip such steps."
            )
        named = ", ".join(f"{k!r} = {v}" for k, v in bad.items() if not k.endswith("gradient"))
        return NonFiniteLossError(
            f"non-finite loss {where}: {named}; {self._kept()}. "
            "Use nan_policy='skip' to skip such batches."
        )

    def _end_epoch(self, model, val, seconds: float) -> dict[str, float]:
        means = {k: s / self._epoch_counts[k] for k, s in self._epoch_sums.items()}
        means = distributed.mean_over_ranks(means, self.device)
        row = {"epoch": self.epoch, "step": self.step, **means, "lr": current_lr(self._optimizers)}
        if self.nan_policy == "skip":
            row["skipped"] = float(self.skipped)
        if val is not None and (self.epoch + 1) % self.val_every_n_epochs == 0:
            ema = self.ema if self.ema_eval else None
            metrics = validate(model, val, self._precision, self.device, ema)
            row.update(metrics)
            self._call("on_validation_end", model, metrics)
        row["epoch_time"] = seconds
        self._log.append(row)
        self._log.write_csv()
        for sched in self._schedulers:
            if sched.interval == "epoch" and (self.epoch + 1) % sched.frequency == 0:
                sched.step(row)
        return row

    def _save(self, model) -> None:
        self._flush()  # a non-finite loss or gradient raises here, before anything is written
        state = capture(self, model)
        bad = first_non_finite_tensor(state)
        if bad is not None:
            raise NonFiniteStateError(
                f"refusing to write a checkpoint at step {self.step}: {bad} holds NaN or inf "
                f"values; {self._kept()}"
            )
        if self.is_main:
            path = self._ckpt.save(state, self.step)
            self.last_checkpoint = self._ckpt.last
            self._call("on_checkpoint", model, path)

    def _call(self, hook: str, model, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, model, *args)


def _is_compiled_module(model) -> bool:
    """Whether ``model`` is torch.compile's OptimizedModule (without importing torch._dynamo,
    which takes seconds: a model compiled by the caller means it is imported already)."""
    dynamo = sys.modules.get("torch._dynamo.eval_frame")
    return dynamo is not None and isinstance(model, dynamo.OptimizedModule)


def _safe_len(batches) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        # every rank reaches teardown before any destroys its gloo pairs: a rank tearing down
        # while its peer still sends was seen once to abort the peer at exit
        with contextlib.suppress(RuntimeError):
            dist.barrier()
        dist.destroy_process_group()
