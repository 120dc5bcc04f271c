"""One training step: automatic optimisation, or the ``optimize`` hook of manual optimisation.

Nothing here reads a tensor on the host, except the non-finite check of ``nan_policy="skip"``,
which must decide before the optimiser steps (one sync per step, or per ``optimize`` call).
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch import nn

from ebm.train import distributed
from ebm.train.logs import snapshot


class SkipBatch(Exception):
    """Raised inside ``optimize`` to abandon the rest of a batch with a non-finite loss."""


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
        self.checks: dict[str, torch.Tensor] = {}
        self.skipped_updates = 0  # optimiser updates dropped because of a non-finite loss

    # --- helpers -------------------------------------------------------------------------
    def _finite(self, tensors) -> bool:
        """One host sync; under DDP every rank gets the same answer (any rank bad -> bad)."""
        bad = torch.stack([~torch.isfinite(t.detach().float()).all() for t in tensors]).any()
        if self.world_size > 1:
            bad = bad.to(torch.int32)
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return not bool(bad)

    def _backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _update(self, optimizers, params):
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
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            for opt in optimizers:
                opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    # --- automatic ------------------------------------------------------------------------
    def automatic(self, batch, is_update: bool) -> tuple[dict, bool, bool]:
        """(terms, updated, skipped). ``is_update``: last micro-batch of an accumulation."""
        if self.ddp is None and self.precision.dtype is None:  # the lean common case
            return self._automatic(self.model.training_step(batch), is_update)
        sync_off = self.ddp is not None and not is_update
        with self.ddp.no_sync() if sync_off else contextlib.nullcontext():
            with self.precision.autocast():
                out = self.ddp(batch) if self.ddp is not None else self.model.training_step(batch)
            return self._automatic(out, is_update)

    def _automatic(self, out, is_update: bool) -> tuple[dict, bool, bool]:
        """Backward (and the update closing a window) for training_step's output ``out``."""
        loss, terms = split_output(out, "training_step")
        if not isinstance(out, torch.Tensor):  # a bare loss is fresh: no copy needed
            terms = snapshot(terms)
        if not isinstance(loss, torch.Tensor):
            raise TypeError(
                "training_step must return a loss Tensor or a dict with a 'loss' Tensor "
                f"(got keys {sorted(terms)}); set manual_optimization = True to step the "
                "optimisers yourself"
            )
        if self.nan_policy == "skip":
            values = [v for v in terms.values() if isinstance(v, torch.Tensor)]
            if not self._finite(values):
                return terms, is_update and self._update_after_skip(), True
        self._backward(loss / self.accumulate if self.accumulate > 1 else loss)
        if is_update:
            self._update(self.optimizers, self.params)
        return terms, is_update, False

    def finish_window(self) -> bool:
        """Step with gradients an unfinished accumulation window left behind (True if any)."""
        if self.manual or self.accumulate == 1:
            return False
        return self._update_after_skip()

    def _update_after_skip(self) -> bool:
        """The skipped micro-batch closed an accumulation window: step with what the window
        gathered before it, if anything (all-reduced by hand: DDP's sync pass never ran)."""
        if not any(p.grad is not None for p in self.params):
            return False
        if self.world_size > 1:
            distributed.all_reduce_grads(self.params, self.world_size)
        self._update(self.optimizers, self.params)
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
        if self.nan_policy == "skip" and not self._finite([loss]):
            raise SkipBatch
        self.checks[f"optimize(index={index}) call {len(self.checks)}"] = loss.detach()
        opt = self.optimizers[index]
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        with self.precision.no_autocast():
            self._backward(loss)
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.world_size > 1:
            distributed.all_reduce_grads(params, self.world_size)
        self._update([opt], params)

    def manual_step(self, batch) -> tuple[dict, bool, bool]:
        self.checks = {}
        try:
            with self.precision.autocast():
                out = self.model.training_step(batch, self.optimize)
        except SkipBatch:
            for o in self.optimizers:
                o.zero_grad(set_to_none=True)
            return {}, bool(self.checks), True
        _, terms = split_output(out, "training_step (manual optimisation)")
        terms = snapshot(terms)
        return terms, True, False
