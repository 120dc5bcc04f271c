"""A plain supervised net as a trainable model for the shared Trainer: (x, y) batches, a data
loss, and the optimiser the notes use (SGD with PyTorch ``weight_decay``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import (
    as_module_input,
    check_choice,
    check_positive,
    check_real,
)
from ebm.models._batch import batch_data, batch_labels, labelled_batch

__all__ = ["Supervised"]

_LOSSES = ("mse", "cross_entropy")
_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


class Supervised(nn.Module):
    """Wraps ``net`` with ``training_step`` (mean-reduced ``loss``) and ``configure_optimizers``.

    net: maps x (B, ...) to predictions (B, ...) ("mse", same shape as y) or logits (B, C)
        ("cross_entropy", y (B,) int64 labels).
    optimizer: "sgd" or "adam", with ``lr`` (finite, > 0) and PyTorch's ``weight_decay`` (finite,
        >= 0: a (wd/2)‖w‖² penalty on every parameter, biases included, as in the notes; see
        ``tau_from``); ``momentum`` (in [0, 1): at 1 nothing decays) is SGD's.
    The training and validation steps are the Trainer's hot path: they check batches' structure,
    shapes and dtypes, never their values (no host sync).

    >>> import torch
    >>> from torch import nn
    >>> model = Supervised(nn.Linear(3, 2), loss="cross_entropy", optimizer="adam", lr=1e-3)
    >>> model(torch.zeros(4, 3)).shape  # logits
    torch.Size([4, 2])
    """

    def __init__(
        self,
        net: nn.Module,
        loss: str = "mse",
        optimizer: str = "sgd",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        check_choice("loss", loss, _LOSSES)
        check_choice("optimizer", optimizer, tuple(_OPTIMIZERS))
        check_positive("lr", lr)
        check_real("weight_decay", weight_decay, 0.0)
        check_real("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        self.net = net
        self.loss_name, self.optimizer_name = loss, optimizer
        self.lr, self.weight_decay, self.momentum = lr, weight_decay, momentum

    def forward(self, x: Tensor) -> Tensor:
        """net(x): x (B, ...) a tensor or an array-like; integers and bools are promoted and
        floating values cast to the net's parameter dtype (no value checks: NaN propagates)."""
        return self.net(as_module_input("x", x, self))

    def _batch(self, batch) -> tuple[Tensor, object]:
        """(x, y) from batch [x, y]: x cast like ``forward``'s, y as given (cast by
        ``training_step``, once the net's output gives the targets' shape or the number of
        classes). An empty batch (B = 0: the mean loss would be NaN) is refused naming ``batch``.
        Shapes and dtypes only for tensors: no host sync."""
        x, y = labelled_batch(batch, "(x, y), inputs (B, ...) and targets")
        batch_data(batch)  # B >= 1
        return as_module_input("batch[0]", x, self), y

    def training_step(self, batch) -> Tensor:
        """batch: (x, y), inputs (B, ...) with B >= 1 and targets (same shape as the net's output
        for "mse"; for "cross_entropy", integer labels of shape (B,) for logits (B, C), a tensor
        of labels (B, d1, ...) for logits (B, C, d1, ...)), tensors or array-likes, cast like ``forward``'s
        x (labels to int64). Anything but a pair, an empty batch, float labels, mse targets not
        shaped like the output, or labels of the wrong shape raise a ValueError naming ``batch``;
        array-like labels are also range-checked on the host (in [0, C), C = the logits'
        shape[1]); a label tensor's values are not read (no host sync: cross-entropy checks them).
        Returns the mean-reduced loss (0-dim)."""
        x, y = self._batch(batch)
        out = self.net(x)
        if self.loss_name == "mse":
            y = as_module_input("batch[1]", y, self)
            if out.shape != y.shape:  # no silent broadcasting
                raise ValueError(
                    f"batch[1] (the targets y) must have the shape of the net's output "
                    f"{tuple(out.shape)} for the mse loss, got {tuple(y.shape)}"
                )
            return F.mse_loss(out, y)
        if out.ndim < 2:
            raise ValueError(
                f"net must return logits of shape (B, C) for the cross_entropy loss, got "
                f"{tuple(out.shape)}"
            )
        expected = (out.shape[0], *out.shape[2:])
        y = batch_labels(
            y,
            x.device,
            out.shape[1],
            shape=expected,
            rows_of=f"the net's logits {tuple(out.shape)}",
        )
        return F.cross_entropy(out, y)

    def validation_step(self, batch) -> dict:
        """batch: (x, y) as for ``training_step``. Returns {"val_loss": the mean loss}."""
        with torch.no_grad():
            return {"val_loss": self.training_step(batch)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The chosen optimizer (SGD with ``momentum``, or Adam) on the net's parameters, with
        ``lr`` and ``weight_decay``."""
        kwargs = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer_name == "sgd":
            kwargs["momentum"] = self.momentum
        return _OPTIMIZERS[self.optimizer_name](self.net.parameters(), **kwargs)
