"""The one Trainer: batching, devices, precision, optimisation extras, logs, checkpoints, DDP.

``Trainer(...).fit(model, train_data, val_data=None, resume=False)``; see ``ebm.train.trainer``
for the model contract and ``ebm.train.callbacks`` for the hooks.
"""

from ebm.train import callbacks
from ebm.train.callbacks import Callback, EarlyStopping, RestartOnDivergence
from ebm.train.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    UnsafeCheckpointError,
    load_checkpoint,
)
from ebm.train.devices import resolve_device
from ebm.train.ema import EMA
from ebm.train.logs import NonFiniteGradientError, NonFiniteLossError, NonFiniteStateError
from ebm.train.state import ResumeMismatchError
from ebm.train.trainer import Trainer

__all__ = [
    "Callback",
    "CheckpointError",
    "CheckpointWriteError",
    "EMA",
    "EarlyStopping",
    "NonFiniteGradientError",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "ResumeMismatchError",
    "RestartOnDivergence",
    "Trainer",
    "UnsafeCheckpointError",
    "callbacks",
    "load_checkpoint",
    "resolve_device",
]
