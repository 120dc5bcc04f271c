"""The data of a training batch, for the models' ``training_step``/``validation_step``."""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import as_index_tensor


def batch_data(batch: object) -> object:
    """The data of a batch: y itself (a tensor or array-like), or the first entry of
    [y, labels, ...] (a list or tuple, as a DataLoader over a TensorDataset yields).

    An empty sequence, or data with no samples (shape (0, ...): a mean over it would be NaN), is
    refused naming ``batch``; shapes only, no host sync."""
    if isinstance(batch, (list, tuple)):
        if not batch:
            raise ValueError("batch must be y (B, ...) or [y, ...], got an empty sequence")
        data = batch[0]
    else:
        data = batch
    shape = getattr(data, "shape", None)
    if (shape is not None and len(shape) > 0 and shape[0] == 0) or (
        isinstance(data, (list, tuple)) and not data
    ):
        got = f"shape {tuple(shape)}" if shape is not None else "an empty sequence"
        raise ValueError(f"batch must hold at least one sample (B >= 1), got {got}")
    return data


def labelled_batch(batch: object, expected: str, allow_extra: bool = False) -> tuple:
    """(x, y), the first two entries of a labelled batch [x, y] (or [x, y, ...] with
    ``allow_extra``). Anything else, a lone tensor or array included (its first two rows are not
    an (x, y) pair), raises a ValueError naming ``batch``; ``expected`` says what it should be,
    e.g. "(x, y), inputs (B, ...) and labels (B,)"."""
    if isinstance(batch, (list, tuple)) and (len(batch) >= 2 if allow_extra else len(batch) == 2):
        return batch[0], batch[1]
    if isinstance(batch, (list, tuple)):
        got = f"a {type(batch).__name__} of length {len(batch)}"
    else:
        shape = getattr(batch, "shape", None)
        got = type(batch).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
    raise ValueError(f"batch must be {expected} (pass both to Trainer.fit), got {got}")


def batch_labels(
    y: object,
    device: torch.device,
    n_classes: int | None = None,
    shape: tuple[int, ...] | None = None,
    rows_of: str = "batch[0]",
) -> Tensor:
    """A labelled batch's class labels, batch[1], as int64 on ``device``. A tensor's dtype is
    checked (integers only: float or bool labels mean a target in the wrong place), never its
    values (no host sync: cross-entropy checks the range); an array-like is converted and
    range-checked on the host, against ``n_classes`` when given. With ``shape``, the labels must
    have it (one class index per row of ``rows_of``, which the message names)."""
    if not isinstance(y, Tensor):
        labels = as_index_tensor("batch[1]", y, ndim=1, high=n_classes, device=device)
    elif y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"batch[1] (the labels y) must hold integer class indices, got dtype {y.dtype}"
        )
    else:
        labels = y.to(device=device, dtype=torch.int64)
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"batch[1] (the labels y) must have shape {tuple(shape)}, one class index per row of "
            f"{rows_of}, got {tuple(labels.shape)}"
        )
    return labels
