"""Numerical precision: fp32, bf16 autocast, or fp16 autocast with a gradient scaler."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["Precision"]

PRECISIONS = ("32", "bf16", "16-mixed")
_ALIASES = {
    "32": "32",
    "32-true": "32",
    "bf16": "bf16",
    "bf16-mixed": "bf16",
    "16-mixed": "16-mixed",
}


class Precision:
    """Autocast context for forward passes and an optional GradScaler (fp16 only).

    bf16 has fp32's exponent range, so it needs no loss scaling; fp16 does. Parameters and
    optimiser states stay in fp32 in every mode (torch.amp semantics).
    """

    def __init__(self, precision: str | int, device: torch.device):
        key = str(precision)
        if key not in _ALIASES:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.name = _ALIASES[key]
        self.device = device
        if self.name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision 'bf16' needs a GPU with bfloat16 support; use '16-mixed'")
        self.dtype = {"32": None, "bf16": torch.bfloat16, "16-mixed": torch.float16}[self.name]
        self.scaler = torch.amp.GradScaler(device.type) if self.name == "16-mixed" else None

    def autocast(self):
        """Context for the forward pass (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def no_autocast(self):
        """Context for backward passes started inside a forward (manual optimisation)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, enabled=False)
