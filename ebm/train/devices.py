"""Where training runs: picking a device and moving batches onto it."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "move_to_device"]

_DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; other names are checked to be available.

    A ``torch.device`` or a string such as ``"cuda:1"`` is passed through after the check.
    """
    if isinstance(device, torch.device):
        name = device.type
    elif isinstance(device, str):
        name = device.split(":")[0]
    else:
        raise ValueError(f"device must be a str or torch.device, got {type(device).__name__}")
    if name not in _DEVICE_CHOICES:
        raise ValueError(f"device must be one of {_DEVICE_CHOICES} (or 'cuda:N'), got {device!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available")
    if name == "mps" and not _mps_available():
        raise ValueError(f"device {device!r} was asked for but MPS is not available")
    return torch.device(device)


def move_to_device(
    batch, device: torch.device, non_blocking: bool = False, float_dtype: torch.dtype | None = None
):
    """Move every tensor of a (nested list/tuple/dict) batch to ``device``.

    On CUDA the caller passes ``non_blocking=True`` for batches that sit in pinned memory.
    float_dtype: cast floating tensors of another floating dtype to it (None: keep dtypes).
    """
    if isinstance(batch, torch.Tensor):
        if float_dtype is not None and batch.is_floating_point() and batch.dtype != float_dtype:
            return batch.to(device, float_dtype, non_blocking=non_blocking)
        if batch.device == device:
            return batch
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, list):
        return [move_to_device(b, device, non_blocking, float_dtype) for b in batch]
    if isinstance(batch, tuple):
        moved = [move_to_device(b, device, non_blocking, float_dtype) for b in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, non_blocking, float_dtype) for k, v in batch.items()}
    return batch
