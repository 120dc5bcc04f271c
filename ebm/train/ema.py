"""An exponential moving average of a model's weights (Polyak averaging)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class EMA:
    """``shadow <- decay * shadow + (1 - decay) * param`` after every optimiser step.

    Floating-point parameters and buffers are averaged; integer buffers (counters) are copied.
    ``swap(model)`` temporarily loads the averaged weights, e.g. for evaluation.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in self._tracked(model).items()}

    @staticmethod
    def _tracked(model: nn.Module) -> dict[str, torch.Tensor]:
        return {**dict(model.named_parameters()), **dict(model.named_buffers())}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        floats_shadow, floats_now = [], []
        for name, value in self._tracked(model).items():
            shadow = self.shadow[name]
            if shadow.is_floating_point():
                floats_shadow.append(shadow)
                floats_now.append(value.detach())
            else:
                shadow.copy_(value)
        if floats_shadow:
            torch._foreach_lerp_(floats_shadow, floats_now, 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's weights with the averaged ones."""
        for name, value in self._tracked(model).items():
            value.copy_(self.shadow[name])

    @contextlib.contextmanager
    def swap(self, model: nn.Module):
        """Use the averaged weights inside the block, the trained ones again after it."""
        saved = {k: v.detach().clone() for k, v in self._tracked(model).items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in self._tracked(model).items():
                    value.copy_(saved[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
