"""What a checkpoint holds, gathered from a running Trainer and put back into one.

Model (with buffers and ``get_extra_state``), optimisers, schedulers, GradScaler, EMA,
callbacks, history, every RNG state of every rank, and the position in the data order: the
epoch, the next batch, the data generator's state when the epoch's permutation was drawn (and
the global RNG state a user DataLoader's epoch began with).
"""

from __future__ import annotations

from ebm.train import distributed
from ebm.train.checkpoint import FORMAT, rng_states, set_rng_states


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


def _check_count(what: str, saved: list, current: list) -> None:
    if len(saved) != len(current):
        raise ValueError(
            f"the checkpoint holds {len(saved)} {what}, but this run has {len(current)}: "
            "resume with the same model and configure_optimizers"
        )


def restore(trainer, model, state: dict) -> None:
    """Put a checkpoint back: weights, optimiser/scheduler/scaler/EMA states, loop position,
    history, callbacks, and this rank's RNG states (rank 0's if the world size changed)."""
    model.load_state_dict(state["model"])
    _check_count("optimizers", state["optimizers"], trainer._optimizers)
    _check_count("lr schedulers", state["schedulers"], trainer._schedulers)
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
