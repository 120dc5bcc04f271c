"""One training step: automatic optimisation, or the ``optimize`` hook of manual optimisation.

Nothing here reads a tensor on the host, except the non-finite check of ``nan_policy="skip"``,
which must decide before the optimiser steps (one sync per step, or per ``optimize`` call).

Gradients are checked as well as losses: a finite loss can have a non-finite gradient (``sqrt``
or ``log`` at 0). Under ``nan_policy="raise"`` a device-side flag of every update's gradients
(``GradientCheck``, or the norm ``grad_clip`` computes anyway) joins the step's checks, read at
the next flush (no extra sync); under ``"skip"`` it is read with the loss terms, in the same
sync, before the optimiser steps. With fp16 precision the
GradScaler owns inf/NaN gradients: it skips such steps and lowers its scale, as torch.amp does.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch import nn

from ebm.train import distributed
from ebm.train.logs import snapshot

__all__ = ["SkipBatch", "GradientCheck", "split_output", "Stepper"]


class SkipBatch(Exception):
    """Raised inside ``optimize`` to abandon the rest of a batch with a non-finite loss."""


class GradientCheck:
    """The device-side flag of the non-finite check for the gradients of fixed ``params``.

    Calling it returns a 0-d float tensor on the parameters' device: 1 if some gradient holds
    NaN or inf, 0 if all are finite (None if no parameter has a gradient), with no host sync. It
    is GradScaler's fused check run at scale 1 (gradients are unchanged), one call per (device,
    dtype) group: a few µs a step for a small MLP on CPU, against ~60 µs for a gradient norm.
    """

    def __init__(self, params):
        groups: dict[tuple, list] = {}
        for p in params:
            groups.setdefault((p.device, p.dtype), []).append(p)
        self.groups = list(groups.values())
        self.ones = {device: torch.ones((), device=device) for device, _ in groups}

    def __call__(self) -> torch.Tensor | None:
        flags = []
        for group in self.groups:
            grads = [p.grad for p in group if p.grad is not None]
            if not grads:
                continue
            grads = [g.coalesce().values() if g.is_sparse else g for g in grads]
            found = torch.zeros((), device=grads[0].device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self.ones[found.device])
            flags.append(found)
        if not flags:
            return None
        flag = flags[0]
        for other in flags[1:]:  # rare: parameters on several devices or of several dtypes
            flag = flag + other.to(flag.device)
        return flag


def split_output(out, where: str) -> tuple[torch.Tensor | None, dict]:
    """(loss, terms to log) from a step's return: a Tensor, a dict with "loss", or None."""
    if out is None:
        return None, {}
    if isinstance(out, torch.Tensor):
        return out, {"loss": out.detach()}
    if isinstance(out, dict):
        terms = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        return out.get("loss"), terms
    raise TypeError(
        f"{where} must return a loss Tensor or a dict {{'loss': tensor, **metrics}}, "
        f"got {type(out).__name__}"
    )


class _StepModule(nn.Module):
    """Routes DDP's forward to ``training_step``, so DDP prepares its gradient reduction."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.training_step(batch)


class Stepper:
    """Holds what a step needs: model, optimisers, precision, clipping, accumulation, DDP."""

    def __init__(
        self,
        model,
        optimizers,
        precision,
        grad_clip,
        accumulate,
        nan_policy,
        world_size,
        device,
        find_unused_parameters=False,
        compile=False,
    ):
        self.model, self.optimizers, self.precision = model, optimizers, precision
        self.scaler = precision.scaler
        self.grad_clip, self.accumulate, self.nan_policy = grad_clip, accumulate, nan_policy
        self.world_size, self.device = world_size, device
        self.manual = bool(getattr(model, "manual_optimization", False))
        self.params = [p for opt in optimizers for g in opt.param_groups for p in g["params"]]
        self.ddp = None
        if world_size > 1:
            distributed.broadcast_module(model)
            if not self.manual:
                ids = [device.index] if device.type == "cuda" else None
                self.ddp = nn.parallel.DistributedDataParallel(
                    _StepModule(model),
                    device_ids=ids,
                    find_unused_parameters=find_unused_parameters,
                )
        # compile: the bound training_step (or the DDP wrapper, as torch advises: compiling it
        # lets DDPOptimizer split graphs at the gradient buckets) is compiled, never the model
        # itself, so its state_dict keys, EMA and checkpoints are those of eager training.
        self._training_step = model.training_step
        self._optimize = self.optimize
        if compile:
            # the hook runs eagerly between compiled graphs (dynamo would trace into it)
            self._optimize = torch.compiler.disable(self.optimize)
            if self.ddp is not None:
                self.ddp = torch.compile(self.ddp)
            else:
                self._training_step = torch.compile(model.training_step)
        self.checks: dict[str, torch.Tensor] = {}
        self._prefix, self._calls, self.updated = "", 0, False
        self.skipped_updates = 0  # optimiser updates dropped because of a non-finite loss
        self.check_grads = self.scaler is None
        self._grad_check_all = GradientCheck(self.params)
        self._grad_check_per_optimizer = [
            GradientCheck([p for g in opt.param_groups for p in g["params"]]) for opt in optimizers
        ]

    # --- helpers -------------------------------------------------------------------------
    def _finite(self, tensors, flags=()) -> bool:
        """One host sync: all ``tensors`` finite and all gradient ``flags`` (GradientCheck) 0?
        Under DDP every rank gets the same answer (any rank bad -> bad)."""
        bad = [~torch.isfinite(t.detach().float()).all() for t in tensors]
        bad += [f != 0 for f in flags if f is not None]
        bad = torch.stack(bad).any()
        if self.world_size > 1:
            bad = bad.to(torch.int32)
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return not bool(bad)

    def _zero(self, optimizers) -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    def _backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _update(self, optimizers, params, flag=None, check=None):
        """Unscale, clip, step and zero ``optimizers``. ``flag``: the gradient flag if already
        computed, else ``check()`` computes it (a GradientCheck of ``params``); under
        nan_policy="raise" it joins ``self.checks``."""
        if self.scaler is not None:
            if self.grad_clip is not None:
                for opt in optimizers:
                    self.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            for opt in optimizers:
                self.scaler.step(opt)
            self.scaler.update()
        else:
            if self.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                flag = (~torch.isfinite(norm.detach())).float()  # the norm is the check
            elif flag is None and self.check_grads and check is not None:
                flag = check()
            if flag is not None and self.nan_policy == "raise":
                self.checks[f"{self._prefix}gradient"] = flag
            for opt in optimizers:
                opt.step()
        self._zero(optimizers)

    # --- automatic ------------------------------------------------------------------------
    def automatic(self, batch, is_update: bool) -> tuple[dict, bool, bool]:
        """(terms, updated, skipped). ``is_update``: last micro-batch of an accumulation."""
        if self.ddp is None and self.precision.dtype is None:  # the lean common case
            return self._automatic(self._training_step(batch), is_update)
        sync_off = self.ddp is not None and not is_update
        with self.ddp.no_sync() if sync_off else contextlib.nullcontext():
            with self.precision.autocast():
                out = self.ddp(batch) if self.ddp is not None else self._training_step(batch)
            return self._automatic(out, is_update)

    def _automatic(self, out, is_update: bool) -> tuple[dict, bool, bool]:
        """Backward (and the update closing a window) for training_step's output ``out``."""
        self.checks, self._prefix = {}, ""
        loss, terms = split_output(out, "training_step")
        if not isinstance(out, torch.Tensor):  # a bare loss is fresh: no copy needed
            terms = snapshot(terms)
        if not isinstance(loss, torch.Tensor):
            raise TypeError(
                "training_step must return a loss Tensor or a dict with a 'loss' Tensor "
                f"(got keys {sorted(terms)}); set manual_optimization = True to step the "
                "optimisers yourself"
            )
        values = [v for v in terms.values() if isinstance(v, torch.Tensor)]
        skip = self.nan_policy == "skip"
        if skip and self.accumulate > 1 and not self._finite(values):
            return terms, is_update and self._update_after_skip(), True
        self._backward(loss / self.accumulate if self.accumulate > 1 else loss)
        if not is_update:
            return terms, False, False
        flag = None
        if skip and self.check_grads:
            # one sync: the loss terms (not yet checked when accumulate == 1) and the gradients
            flag = self._grad_check_all()
            checked = values if self.accumulate == 1 else []
            if not self._finite(checked, [flag]):
                self._zero(self.optimizers)  # a non-finite gradient poisons the whole window
                return terms, False, True
        elif skip and self.accumulate == 1 and not self._finite(values):
            self._zero(self.optimizers)
            return terms, False, True
        self._update(self.optimizers, self.params, flag, self._grad_check_all)
        return terms, True, False

    def finish_window(self) -> bool:
        """Step with gradients an unfinished accumulation window left behind (True if any)."""
        if self.manual or self.accumulate == 1:
            return False
        self.checks, self._prefix = {}, ""
        return self._update_after_skip()

    def _update_after_skip(self) -> bool:
        """The skipped micro-batch closed an accumulation window: step with what the window
        gathered before it, if anything (all-reduced by hand: DDP's sync pass never ran)."""
        if not any(p.grad is not None for p in self.params):
            return False
        if self.world_size > 1:
            distributed.all_reduce_grads(self.params, self.world_size)
        flag = None
        if self.nan_policy == "skip" and self.check_grads:
            flag = self._grad_check_all()
            if not self._finite([], [flag]):
                self._zero(self.optimizers)
                return False
        self._update(self.optimizers, self.params, flag, self._grad_check_all)
        return True

    # --- manual ---------------------------------------------------------------------------
    def optimize(self, loss: torch.Tensor, index: int = 0) -> None:
        """The hook handed to ``training_step(batch, optimize)``: backward, (DDP all-reduce),
        unscale, clip, ``optimizers[index].step()``, zero_grad. Gradients of every optimiser
        are cleared before the backward, so each call sees only its own loss."""
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError(f"optimize expects a scalar loss Tensor, got {loss!r}")
        if not 0 <= index < len(self.optimizers):
            raise ValueError(
                f"optimize index must be in [0, {len(self.optimizers)}), got {index!r}"
            )
        opt = self.optimizers[index]
        self._zero(self.optimizers)
        with self.precision.no_autocast():
            self._backward(loss)
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.world_size > 1:
            distributed.all_reduce_grads(params, self.world_size)
        self._prefix = f"optimize(index={index}) call {self._calls} "
        self._calls += 1
        flag = None
        if self.nan_policy == "skip":
            # one sync for the loss and its gradients, before the optimiser steps
            flag = self._grad_check_per_optimizer[index]() if self.check_grads else None
            if not self._finite([loss], [flag]):
                self._zero(self.optimizers)
                raise SkipBatch
        self.checks[f"{self._prefix}loss"] = loss.detach()
        self._update([opt], params, flag, self._grad_check_per_optimizer[index])
        self.updated = True

    def manual_step(self, batch) -> tuple[dict, bool, bool]:
        self.checks, self._calls = {}, 0
        self.updated = False
        try:
            with self.precision.autocast():
                out = self._training_step(batch, self._optimize)
        except SkipBatch:
            for o in self.optimizers:
                o.zero_grad(set_to_none=True)
            return {}, self.updated, True
        _, terms = split_output(out, "training_step (manual optimisation)")
        terms = snapshot(terms)
        return terms, True, False
