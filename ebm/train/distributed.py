"""Distributed data parallel: process-group set-up from torchrun's environment, and helpers.

``torchrun --nproc_per_node=N script.py`` sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT. The trainer then joins (or creates) the default process group: gloo on CPU,
nccl on CUDA. A process group created by the caller is used as is.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "env_world_size",
    "is_initialized",
    "setup",
    "local_device",
    "broadcast_module",
    "all_reduce_grads",
    "mean_over_ranks",
    "weighted_sum_over_ranks",
    "gather_objects",
    "broadcast_int",
]


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def setup(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, created) for this process; initialises the group when launched by
    torchrun and none exists. ``created`` tells whether the caller should destroy it later."""
    if is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if env_world_size() <= 1:
        return 0, 1, False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), True


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on CUDA each process takes the GPU named by LOCAL_RANK."""
    if device.type == "cuda" and device.index is None and env_world_size() > 1:
        index = int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def broadcast_module(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def all_reduce_grads(params, world_size: int) -> None:
    """Average the gradients of ``params`` over ranks in one flattened all-reduce.

    Used by manual optimisation, where a training step runs several backward passes that DDP's
    reducer (one backward per forward) cannot follow. Every rank must hold gradients for the
    same parameters (the same ``optimize`` calls in the same order), or the sizes disagree.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world_size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of host floats over ranks (same keys on every rank)."""
    if not values or not is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def weighted_sum_over_ranks(sums: dict[str, float], count: float, device: torch.device):
    """Sum per-rank sums and counts over ranks: returns (sums, count)."""
    if not is_initialized():
        return sums, count
    keys = sorted(sums)
    t = torch.tensor([*(sums[k] for k in keys), count], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    values = t.tolist()
    return dict(zip(keys, values[:-1])), values[-1]


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (in-memory pickling between processes; never written to disk)."""
    if not is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_int(value: int, device: torch.device) -> int:
    if not is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())
