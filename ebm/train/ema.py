"""An exponential moving average of a model's weights (Polyak averaging)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ebm._checks import check_real

__all__ = ["EMA"]


class EMA:
    """``shadow <- decay * shadow + (1 - decay) * param`` after every optimiser step.

    model: the ``nn.Module`` whose weights are averaged; decay: a finite real in (0, 1) (0 would
    average nothing, 1 would never move). Floating-point parameters and buffers are averaged;
    integer buffers (counters) are copied. ``update``, ``copy_to`` and ``swap`` take the same
    model (an ``nn.Module`` with the same named tensors); ``swap(model)`` temporarily loads the
    averaged weights, e.g. for evaluation. The shadow copies live on the model's device and in
    its dtypes at construction; ``Trainer(ema_decay=...)`` builds one after moving the model
    to its device and updates it after every optimiser update.

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(1, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)
    >>> ema = EMA(model, decay=0.9)
    >>> _ = nn.init.ones_(model.weight)  # the weights jump from 0 to 1 ...
    >>> ema.update(model)  # ... and the average moves by 1 - decay of the way
    >>> ema.shadow["weight"]
    tensor([[0.1000]])
    >>> with ema.swap(model):
    ...     model.weight.data
    tensor([[0.1000]])
    >>> model.weight.data  # the trained weights are back
    tensor([[1.]])
    """

    def __init__(self, model: nn.Module, decay: float):
        check_real("decay", decay, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in self._tracked(model).items()}

    def _tracked(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        tracked = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        shadow = getattr(self, "shadow", None)
        if shadow is not None and tracked.keys() != shadow.keys():
            unknown = sorted(set(tracked) ^ set(shadow))
            raise ValueError(
                f"model must have the tensors this EMA was built from; these differ: "
                f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
            )
        return tracked

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step: ``shadow <- decay * shadow + (1 - decay) * param``.

        model: the ``nn.Module`` this EMA was built from (the same named parameters and
        buffers; another set is a ValueError naming the differences). Floating tensors are
        averaged in place, under ``torch.no_grad()``; integer buffers are copied. Returns None.
        """
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

    def swap(self, model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
        """Use the averaged weights inside the block, the trained ones again after it:
        ``with ema.swap(model): ...``. The model is checked at the call, not at ``with``."""
        return self._swapped(model, self._tracked(model))

    @contextlib.contextmanager
    def _swapped(self, model: nn.Module, tracked: dict[str, torch.Tensor]):
        saved = {k: v.detach().clone() for k, v in tracked.items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in self._tracked(model).items():
                    value.copy_(saved[name])

    def state_dict(self) -> dict:
        """``{"decay": float, "shadow": {name: tensor}}``: the decay and the averaged tensors,
        named as in ``model.state_dict()`` (the live tensors, not copies: ``torch.save`` them
        or clone them before the next ``update``)."""
        return {"decay": self.decay, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        """Take back a :meth:`state_dict`: the decay, and every averaged tensor copied in place.

        state: ``{"decay": float, "shadow": {name: tensor}}`` with the same tensor names as
        this EMA's and tensors of the same shapes (other devices and dtypes are converted); the decay in
        (0, 1). A missing or extra name, another shape or a bad decay is a ValueError before
        anything changes.
        """
        shadow = state["shadow"]
        if shadow.keys() != self.shadow.keys():
            differ = sorted(set(shadow) ^ set(self.shadow))
            raise ValueError(
                f"state must hold this EMA's tensors; these names differ: "
                f"{differ[:5]}{' ...' if len(differ) > 5 else ''}"
            )
        for name, value in shadow.items():
            if tuple(value.shape) != tuple(self.shadow[name].shape):
                raise ValueError(
                    f"state['shadow'][{name!r}] has shape {tuple(value.shape)}, this EMA's "
                    f"has {tuple(self.shadow[name].shape)}"
                )
        check_real("state['decay']", state["decay"], 0.0, 1.0, False, False)
        self.decay = float(state["decay"])
        with torch.no_grad():
            for name, value in shadow.items():
                self.shadow[name].copy_(value)
