"""What a checkpoint holds, gathered from a running Trainer and put back into one.

Model (with buffers and ``get_extra_state``), optimisers, schedulers, GradScaler, EMA,
callbacks, history, every RNG state of every rank, and the position in the data order: the
epoch, the next batch, the data generator's state when the epoch's permutation was drawn (and
the global RNG state a user DataLoader's epoch began with).
"""

from __future__ import annotations

import copy

import torch

from ebm.train import distributed
from ebm.train.checkpoint import FORMAT, rng_states, set_rng_states

__all__ = [
    "capture",
    "run_config",
    "ResumeMismatchError",
    "check_resumable",
    "restore",
    "first_non_finite_tensor",
]


def capture(trainer, model) -> dict:
    """The checkpoint payload (a collective under DDP: every rank must call it)."""
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizers": [opt.state_dict() for opt in trainer._optimizers],
        "schedulers": [s.scheduler.state_dict() for s in trainer._schedulers],
        "scaler": trainer._precision.scaler.state_dict() if trainer._precision.scaler else None,
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "rng": distributed.gather_objects(rng_states()),
        "run": dict(trainer._run_config),
        "loop": {
            "epoch": trainer.epoch,
            "batch": trainer._batch,
            "step": trainer.step,
            "updates": trainer.updates,
            "skipped": trainer.skipped,
            "data_generator": trainer._data_gen.get_state(),
            "epoch_generator": trainer._epoch_gen_state,
            "loader_rng": trainer._loader_rng,
            "epoch_sums": dict(trainer._epoch_sums),
            "epoch_counts": dict(trainer._epoch_counts),
            "world_size": trainer.world_size,
        },
        "history": list(trainer.history),
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
    }


def run_config(trainer, train) -> dict:
    """What exact resumption depends on: the data's size and batching, the world size,
    accumulation and precision. ``train`` is the trainer's ``Batches``."""
    loader = train.loader
    if loader is not None:
        dataset = getattr(loader, "dataset", None)
        n_samples = len(dataset) if hasattr(dataset, "__len__") else None
        batch_size = loader.batch_size
    else:
        n_samples, batch_size = train.n, train.batch_size
    try:
        batches = len(train)
    except TypeError:
        batches = None
    return {
        "batch_size": batch_size,
        "n_samples": n_samples,
        "batches_per_epoch": batches,
        "world_size": trainer.world_size,
        "accumulate_grad_batches": trainer.accumulate,
        "shuffle": trainer.shuffle,
        "drop_last": trainer.drop_last,
        "precision": trainer._precision.name,
        "ema": trainer.ema is not None,
    }


class ResumeMismatchError(ValueError):
    """The checkpoint was written by a run that cannot be continued exactly by this one."""


def _mismatch(field: str, saved, current, hint: str) -> ResumeMismatchError:
    return ResumeMismatchError(
        f"cannot resume exactly: {field} is {current!r} in this run but {saved!r} in the "
        f"checkpoint. {hint} Nothing was changed. To start a new run from the saved weights, "
        "load them yourself: model.load_state_dict(load_checkpoint(path)['model'])."
    )


_HINTS = {
    "batch_size": "The interrupted epoch's position is counted in batches;",
    "n_samples": "The data differ in size;",
    "batches_per_epoch": "The epoch is cut into another number of batches;",
    "world_size": "Each rank's share of the data depends on the number of processes;",
    "accumulate_grad_batches": "An accumulation window would be cut differently;",
    "shuffle": "The data order would differ;",
    "drop_last": "The last batch would differ;",
    "precision": "The gradient scaler's state belongs to the saved precision;",
    "ema": "The weight average (ema_decay) would start afresh or be lost;",
}


def _shapes(state: dict) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def check_resumable(trainer, model, state: dict) -> None:
    """Raise :class:`ResumeMismatchError` naming the first field where ``state`` cannot be
    continued by this trainer and model; reads and changes nothing else."""
    for field, saved in state.get("run", {}).items():
        current = trainer._run_config.get(field)
        if field in trainer._run_config and saved != current:
            hint = _HINTS.get(field, "") + " resume with the same setting."
            raise _mismatch(field, saved, current, hint)
    saved_shapes, current_shapes = _shapes(state["model"]), _shapes(model.state_dict())
    missing = sorted(set(current_shapes) - set(saved_shapes))
    unexpected = sorted(set(saved_shapes) - set(current_shapes))
    if missing or unexpected:
        raise _mismatch(
            "the model's parameter names",
            f"{len(saved_shapes)} tensors" + (f", extra {unexpected[:5]}" if unexpected else ""),
            f"{len(current_shapes)} tensors" + (f", missing {missing[:5]}" if missing else ""),
            "The model's architecture differs from the checkpoint's;",
        )
    for name, shape in current_shapes.items():
        if saved_shapes[name] != shape:
            raise _mismatch(
                f"the shape of {name!r}",
                saved_shapes[name],
                shape,
                "The model's architecture differs from the checkpoint's;",
            )
    what = "configure_optimizers must return the same optimisers and schedulers;"
    if len(state["optimizers"]) != len(trainer._optimizers):
        raise _mismatch(
            "the number of optimizers", len(state["optimizers"]), len(trainer._optimizers), what
        )
    for i, (opt, saved) in enumerate(zip(trainer._optimizers, state["optimizers"])):
        sizes = [len(g["params"]) for g in opt.param_groups]
        saved_sizes = [len(g["params"]) for g in saved["param_groups"]]
        if sizes != saved_sizes:
            raise _mismatch(f"optimizer {i}'s parameter groups (sizes)", saved_sizes, sizes, what)
    if len(state["schedulers"]) != len(trainer._schedulers):
        raise _mismatch(
            "the number of lr schedulers", len(state["schedulers"]), len(trainer._schedulers), what
        )
    if trainer.ema is not None and state["ema"] is not None:
        saved_ema = _shapes(state["ema"].get("shadow", {}))
        if saved_ema != _shapes(trainer.ema.state_dict().get("shadow", {})):
            raise _mismatch("the EMA's tensors", "another set", "this model's", "")


def restore(trainer, model, state: dict) -> None:
    """Put a checkpoint back, all or nothing: weights, optimiser/scheduler/scaler/EMA states,
    loop position, history, callbacks, and this rank's RNG states.

    Everything is validated first (:func:`check_resumable`); should loading still fail, the
    model, optimisers, schedulers, scaler and EMA are rolled back to their states before.
    """
    check_resumable(trainer, model, state)
    before = _snapshot(trainer, model)
    try:
        model.load_state_dict(state["model"])
        for opt, saved in zip(trainer._optimizers, state["optimizers"]):
            opt.load_state_dict(saved)
        for sched, saved in zip(trainer._schedulers, state["schedulers"]):
            sched.scheduler.load_state_dict(saved)
        if trainer._precision.scaler is not None and state["scaler"] is not None:
            trainer._precision.scaler.load_state_dict(state["scaler"])
        if trainer.ema is not None and state["ema"] is not None:
            trainer.ema.load_state_dict(state["ema"])
        if len(state["callbacks"]) == len(trainer.callbacks):  # else: a new set of callbacks
            for cb, saved in zip(trainer.callbacks, state["callbacks"]):
                cb.load_state_dict(saved)
    except BaseException:
        _roll_back(trainer, model, before)
        raise
    loop = state["loop"]
    trainer.epoch, trainer._batch, trainer.step = loop["epoch"], loop["batch"], loop["step"]
    trainer.skipped, trainer.updates = loop["skipped"], loop["updates"]
    trainer._data_gen.set_state(loop["data_generator"])
    trainer._epoch_gen_state = loop["epoch_generator"]
    trainer._loader_rng = loop["loader_rng"]
    trainer._epoch_sums, trainer._epoch_counts = loop["epoch_sums"], loop["epoch_counts"]
    trainer.history[:] = state["history"]
    rngs = state["rng"]
    set_rng_states(rngs[trainer.rank] if len(rngs) == trainer.world_size else rngs[0])


def _snapshot(trainer, model) -> dict:
    return {
        "model": {
            k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
            for k, v in model.state_dict().items()
        },
        "optimizers": [copy.deepcopy(o.state_dict()) for o in trainer._optimizers],
        "schedulers": [copy.deepcopy(s.scheduler.state_dict()) for s in trainer._schedulers],
        "scaler": copy.deepcopy(trainer._precision.scaler.state_dict())
        if trainer._precision.scaler is not None
        else None,
        "ema": copy.deepcopy(trainer.ema.state_dict()) if trainer.ema is not None else None,
        "callbacks": [copy.deepcopy(cb.state_dict()) for cb in trainer.callbacks],
    }


def _roll_back(trainer, model, before: dict) -> None:
    model.load_state_dict(before["model"])
    for opt, saved in zip(trainer._optimizers, before["optimizers"]):
        opt.load_state_dict(saved)
    for sched, saved in zip(trainer._schedulers, before["schedulers"]):
        sched.scheduler.load_state_dict(saved)
    if before["scaler"] is not None:
        trainer._precision.scaler.load_state_dict(before["scaler"])
    if before["ema"] is not None:
        trainer.ema.load_state_dict(before["ema"])
    for cb, saved in zip(trainer.callbacks, before["callbacks"]):
        cb.load_state_dict(saved)


def first_non_finite_tensor(state: dict) -> str | None:
    """The name of the first floating tensor of a checkpoint's model, optimiser or EMA state
    that holds NaN or inf, else None (one host sync for all of them)."""
    named = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() or value.is_complex():
                named.append((prefix, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}[{k!r}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)

    walk("model", {k: v for k, v in state["model"].items()})
    walk("optimizers", state["optimizers"])
    if state.get("ema") is not None:
        walk("ema", state["ema"])
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t).all().to(named[0][1].device) for _, t in named])
    flags = finite.tolist()  # the one host sync
    for (name, _), ok in zip(named, flags):
        if not ok:
            return name
    return None
