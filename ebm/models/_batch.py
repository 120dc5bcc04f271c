"""The data of a training batch, for the models' ``training_step``/``validation_step``."""

from __future__ import annotations


def batch_data(batch: object) -> object:
    """The data of a batch: y itself (a tensor or array-like), or the first entry of
    [y, labels, ...] (a list or tuple, as a DataLoader over a TensorDataset yields)."""
    if isinstance(batch, (list, tuple)):
        if not batch:
            raise ValueError("batch must be y (B, ...) or [y, ...], got an empty sequence")
        return batch[0]
    return batch
