"""Validation: batch-size-weighted means of ``validation_step``'s terms over all ranks."""

from __future__ import annotations

import contextlib

import torch

from ebm.train import distributed
from ebm.train.data import Batches, batch_size_of
from ebm.train.steps import split_output

__all__ = ["validate"]


@torch.no_grad()
def validate(model, val: Batches, precision, device: torch.device, ema=None) -> dict[str, float]:
    """``{"val_<term>": mean}`` over the validation data (with the EMA weights if ``ema``).

    Runs under ``torch.no_grad()``; a validation_step that needs gradients (e.g. Langevin
    sampling) opens ``torch.enable_grad()`` itself. One host sync, plus one all-reduce under DDP.
    """
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    with ema.swap(model) if ema is not None else contextlib.nullcontext():
        for batch in val.epoch(val.order(None)):  # unshuffled: no generator needed
            with precision.autocast():
                out = model.validation_step(batch)
            _, terms = split_output(out, "validation_step")
            n = batch_size_of(batch)
            for name, value in terms.items():
                value = torch.as_tensor(value, device=device).float().reshape(()) * n
                sums[name] = sums[name] + value if name in sums else value
            count += n
    model.train()
    names = list(sums)
    host = torch.stack([sums[k] for k in names]).tolist() if names else []
    totals, count = distributed.weighted_sum_over_ranks(dict(zip(names, host)), count, device)
    return {f"val_{k}": v / count for k, v in totals.items()}
