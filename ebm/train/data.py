"""Batching: in-memory tensors, Datasets and DataLoaders behind one small interface.

Tensors are batched by slicing a permutation drawn from the trainer's private generator: no
DataLoader, no collate, no per-batch Python objects beyond the slice. Under DDP every rank draws
the same permutation and takes every ``world_size``-th index of it, so a global batch of
``batch_size * world_size`` samples is exactly the batch a single process would see.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Sampler

from ebm._checks import _from_array_like, all_finite
from ebm.train.devices import move_to_device

__all__ = ["Batches", "batch_size_of"]


class _IndexSampler(Sampler):
    """Yields a fixed list of indices (this rank's share of the epoch order, from a start)."""

    def __init__(self, indices: torch.Tensor):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices.tolist())

    def __len__(self) -> int:
        return len(self.indices)


def _check_not_empty(name: str, n: int) -> None:
    if n == 0:
        raise ValueError(f"{name} is empty (0 samples): there is nothing to train or validate on")


class Batches:
    """One epoch of batches at a time, on the training device.

    Args:
        data: a Tensor or numpy array (batches are Tensor slices), a tuple/list of them with
            equal first dimension (batches are lists ``[xb, yb, ...]``), a Dataset (default
            collate) or a DataLoader (used as is). Numpy arrays become tensors of their dtype,
            then follow the tensor rules.
        batch_size: samples per batch on this rank (None: the whole per-rank data at once).
        shuffle: draw a new order every epoch (tensors and Datasets).
        device: where batches are delivered.
        rank / world_size: this process's place under DDP (each takes every world_size-th
            sample of the shared order).
        drop_last: drop the last incomplete batch.
        num_workers: DataLoader workers for a Dataset.
        name: the user's argument name, used in error messages ("train_data", "val_data").
        float_dtype: floating data are cast to it (the model's dtype); None keeps theirs.
    """

    def __init__(
        self,
        data,
        batch_size: int | None,
        shuffle: bool,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        num_workers: int = 0,
        name: str = "train_data",
        float_dtype: torch.dtype | None = None,
    ):
        self.name, self.shuffle, self.device = name, shuffle, device
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.num_workers, self.float_dtype = num_workers, float_dtype
        self._pin = device.type == "cuda"
        self.loader: DataLoader | None = None
        self.tensors: list[torch.Tensor] | None = None
        self.dataset: Dataset | None = None
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if isinstance(data, DataLoader):
            self.loader = data
            self._check_loader()
            return
        if isinstance(data, (torch.Tensor, np.ndarray)):
            self.tensors, self.single = [self._tensor(data, name)], True
        elif (
            isinstance(data, (tuple, list))
            and data
            and all(isinstance(t, (torch.Tensor, np.ndarray)) for t in data)
        ):
            self.tensors = [self._tensor(t, f"{name}[{i}]") for i, t in enumerate(data)]
            self.single = False
        elif isinstance(data, IterableDataset):
            raise ValueError(
                f"{name} is an IterableDataset: wrap it in a DataLoader yourself "
                "(the trainer cannot shuffle or split it)"
            )
        elif isinstance(data, Dataset) and hasattr(data, "__len__"):
            self.dataset = data
        else:
            raise ValueError(
                f"{name} must be a Tensor or numpy array, a tuple/list of them, a Dataset with "
                f"__len__ or a DataLoader, got {_describe(data)}"
            )
        if self.tensors is not None:
            if any(t.ndim == 0 for t in self.tensors):
                raise ValueError(f"{name} tensors need a batch dimension, got a 0-dim tensor")
            n = len(self.tensors[0])
            lengths = [len(t) for t in self.tensors]
            if any(m != n for m in lengths):
                raise ValueError(f"{name} tensors must share their first dimension, got {lengths}")
        self.n = len(self.tensors[0]) if self.tensors is not None else len(self.dataset)
        _check_not_empty(name, self.n)
        # every rank gets the same number of samples: the order is padded by wrapping around
        self.per_rank = math.ceil(self.n / world_size)
        self.batch_size = self.per_rank if batch_size is None else min(batch_size, self.per_rank)
        if drop_last and self.per_rank // self.batch_size == 0:
            raise ValueError(
                f"{name} has {self.n} samples, fewer than one batch of {self.batch_size} per rank "
                "with drop_last=True"
            )

    def _tensor(self, value, name: str) -> torch.Tensor:
        """A data tensor: numpy -> torch, floating -> ``float_dtype``, NaN/inf rejected."""
        t = value
        if isinstance(value, np.ndarray):  # torch.as_tensor's dtype, then the tensor rules
            t = _from_array_like(name, value, ("numbers", "numbers (bool, int, float)"))
        if t.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
        if t.is_floating_point():
            if self.float_dtype is not None and t.dtype != self.float_dtype:
                t = t.to(self.float_dtype)
            if not all_finite(t):
                raise ValueError(
                    f"{name} contains NaN or inf values "
                    f"({int(torch.isnan(t).sum())} NaN, {int(torch.isinf(t).sum())} inf): "
                    "training data must be finite"
                )
        return t

    def _check_loader(self) -> None:
        if self.world_size > 1 and not isinstance(
            getattr(self.loader, "sampler", None), DistributedSampler
        ):
            warnings.warn(
                f"{self.name} is a DataLoader without a DistributedSampler: under DDP every "
                "rank iterates all of it. Pass a Dataset or tensors to let the trainer shard "
                "them, or give the loader a DistributedSampler.",
                stacklevel=4,
            )
        try:
            n = len(self.loader)
        except TypeError:  # an iterable-style loader: its length is unknown up front
            return
        _check_not_empty(self.name, n)

    def __len__(self) -> int:
        """Batches per epoch on this rank (a length-less DataLoader raises TypeError)."""
        if self.loader is not None:
            return len(self.loader)
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, generator: torch.Generator) -> torch.Tensor | None:
        """This epoch's sample order on this rank (None: natural order, no copying needed)."""
        if self.loader is not None:
            return None
        full_batch = self.batch_size >= self.n and self.world_size == 1
        if not self.shuffle or full_batch:  # a full batch's loss does not depend on its order
            if self.world_size == 1:
                return None
            order = torch.arange(self.n)
        else:
            order = torch.randperm(self.n, generator=generator)
        if self.world_size > 1:
            pad = self.per_rank * self.world_size - self.n
            order = torch.cat([order, order[:pad]])[self.rank :: self.world_size]
        return order

    def epoch(
        self, order: torch.Tensor | None, start: int = 0, positioned=None, worker_seed: int = 0
    ) -> Iterator:
        """Batches of one epoch on the device, beginning at batch index ``start``.

        positioned: for a DataLoader, an iterator already advanced to ``start`` (see
        :meth:`skip_loader`).
        """
        if self.loader is not None:
            yield from self._loader_epoch(start, positioned)
        elif self.tensors is not None:
            yield from self._tensor_epoch(order, start)
        else:
            yield from self._dataset_epoch(order, start, worker_seed)

    def skip_loader(self, start: int, rng_state: torch.Tensor):
        """A DataLoader iterator advanced past ``start`` batches, re-created from the global
        RNG state it first saw, so a shuffling sampler replays the interrupted epoch's order.
        The global RNG is left as it was."""
        current = torch.get_rng_state()
        torch.set_rng_state(rng_state)
        try:
            iterator = iter(self.loader)
            for _ in range(start):
                next(iterator)
        finally:
            torch.set_rng_state(current)
        return iterator

    def _tensor_epoch(self, order, start):
        tensors, bs, single = self.tensors, self.batch_size, self.single
        device, pin = self.device, self._pin
        if order is not None and tensors[0].device != order.device:
            order = order.to(tensors[0].device)
        move = tensors[0].device != device
        for i in range(start, len(self)):
            lo, hi = i * bs, min((i + 1) * bs, self.per_rank)
            if order is None:
                batch = [t[lo:hi] for t in tensors]  # views: no copy
            else:
                index = order[lo:hi]
                batch = [t[index] for t in tensors]
            if move:
                if pin and batch[0].device.type == "cpu":
                    batch = [b.pin_memory() for b in batch]
                batch = [b.to(device, non_blocking=pin) for b in batch]
            yield batch[0] if single else batch

    def _dataset_epoch(self, order, start, worker_seed):
        indices = torch.arange(self.per_rank) if order is None else order
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=_IndexSampler(indices[start * self.batch_size :]),
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            pin_memory=self._pin,
            generator=torch.Generator().manual_seed(worker_seed),
        )
        for batch in loader:
            yield move_to_device(batch, self.device, self._pin, self.float_dtype)

    def _loader_epoch(self, start, positioned):
        pin = self._pin and bool(getattr(self.loader, "pin_memory", False))
        if positioned is not None:
            for batch in positioned:
                yield move_to_device(batch, self.device, pin, self.float_dtype)
            return
        for i, batch in enumerate(self.loader):
            if i >= start:
                yield move_to_device(batch, self.device, pin, self.float_dtype)


def _describe(data) -> str:
    """The type of ``data`` for an error message; a list or tuple names its elements' types."""
    if isinstance(data, (tuple, list)) and data:
        inner = sorted({type(v).__name__ for v in data})
        hint = (
            " (nested Python lists: convert them with numpy.asarray or torch.tensor first)"
            if all(isinstance(v, (list, tuple, int, float)) for v in data)
            else ""
        )
        return f"{type(data).__name__} of {', '.join(inner)}{hint}"
    return type(data).__name__


def batch_size_of(batch) -> int:
    """Number of samples in a batch (first dimension of its first tensor; 1 if none)."""
    if isinstance(batch, torch.Tensor):
        return len(batch) if batch.ndim else 1
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    if isinstance(batch, dict) and batch:
        return batch_size_of(next(iter(batch.values())))
    return 1
