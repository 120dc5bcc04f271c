"""Checkpoints: contents, atomic writes, rotation, safe loading, exact mid-epoch resume."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch
from _train_models import MLP, mlp_data, params_of
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ebm.train import Callback, Trainer, UnsafeCheckpointError, load_checkpoint
from ebm.train.checkpoint import FORMAT, rng_states, save_atomic, set_rng_states


class _NoisyMLP(MLP):
    """Draws from the global RNG inside training_step, and keeps extra state (a small replay
    buffer) through get_extra_state, as an EBM would."""

    def __init__(self, seed=0):
        super().__init__(seed=seed)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.replay = torch.zeros(4, 4)

    def training_step(self, batch):
        x, y = batch
        noise = 0.05 * torch.randn_like(x)
        self.calls += 1
        self.replay = torch.roll(self.replay, 1, 0)
        self.replay[0] = x[0]
        return nn.functional.mse_loss(self.net(x + noise).squeeze(-1), y)

    def get_extra_state(self):
        return {"replay": self.replay.clone()}

    def set_extra_state(self, state):
        self.replay = state["replay"].clone()

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-2)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)}


class _CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, model, outputs):
        if trainer.step == self.step:
            raise KeyboardInterrupt("simulated crash")


def _trainer(tmp_path, **kw):
    args = dict(
        max_epochs=3,
        batch_size=8,
        seed=7,
        progress=False,
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=5,
        log_every_n_steps=4,
        ema_decay=0.9,
    )
    args.update(kw)
    return Trainer(**args)


def _losses(history):
    return [(h["step"], h["loss"]) for h in history]


@pytest.mark.parametrize("form", ["tensors", "dataset", "loader"])
def test_resume_mid_epoch_is_bit_identical(tmp_path, form):
    x, y = mlp_data(96)  # 12 batches per epoch

    def data():
        if form == "tensors":
            return (x, y)
        if form == "dataset":
            return TensorDataset(x, y)
        return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)  # global-RNG sampler

    reference = _NoisyMLP()
    ref_trainer = _trainer(tmp_path / "ref")
    ref_trainer.fit(reference, data())

    crashed = _NoisyMLP()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "run", callbacks=[_CrashAt(17)]).fit(crashed, data())
    assert load_checkpoint(tmp_path / "run" / "last.pt")["loop"]["step"] == 15  # mid-epoch 1

    torch.manual_seed(999)  # a fresh process would start from some other global RNG state
    resumed = _NoisyMLP(seed=123)  # different init: everything must come from the checkpoint
    trainer = _trainer(tmp_path / "run")
    trainer.fit(resumed, data(), resume=True)

    for k, v in params_of(reference).items():
        assert torch.equal(v, params_of(resumed)[k]), k
    assert torch.equal(reference.replay, resumed.replay)
    for k, v in ref_trainer.ema.shadow.items():
        assert torch.equal(v, trainer.ema.shadow[k])
    assert _losses(trainer.history) == _losses(ref_trainer.history)
    # metrics.csv: the rows logged after the checkpoint and before the crash are not repeated
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == [h["step"] for h in ref_trainer.history]


def test_checkpoint_contents_and_rotation(tmp_path):
    trainer = _trainer(tmp_path, keep_last=2, precision="16-mixed")
    trainer.fit(_NoisyMLP(), mlp_data(96))
    numbered = sorted(p.name for p in tmp_path.glob("step*.pt"))
    assert numbered == ["step00000035.pt", "step00000036.pt"]  # every 5 steps + the final one
    assert not list(tmp_path.glob(".*tmp"))
    last, newest = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / numbered[-1])
    assert last["loop"]["step"] == newest["loop"]["step"] == 36
    state = last
    assert state["format"] == FORMAT
    assert set(state) >= {"model", "optimizers", "schedulers", "scaler", "ema", "rng", "loop"}
    assert "_extra_state" in state["model"] and "calls" in state["model"]
    assert state["model"]["calls"].item() == 36
    assert state["schedulers"][0]["last_epoch"] == 3
    assert state["scaler"]["scale"] > 0
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}
    assert state["loop"]["epoch"] == 3 and state["loop"]["batch"] == 0
    csv = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,") and len(csv) == 1 + len(trainer.history)


def test_keep_last_is_at_least_one(tmp_path):
    from ebm.train.checkpoint import CheckpointDir

    # keep_last=0 deleted every numbered file, including the one last.pt had just been made from
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"^keep_last must be"):
            Trainer(max_epochs=1, ckpt_dir=tmp_path, keep_last=bad, progress=False)
        with pytest.raises(ValueError, match=r"^keep_last must be"):
            CheckpointDir(tmp_path, keep_last=bad)
    trainer = Trainer(max_epochs=3, batch_size=None, ckpt_dir=tmp_path, keep_last=1, progress=False)
    trainer.fit(MLP(), mlp_data(16))
    assert sorted(p.name for p in tmp_path.glob("step*.pt")) == ["step00000003.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 3


class _Gadget:
    """A custom class: pickling it into a checkpoint makes the file unsafe to load."""

    def __init__(self):
        self.payload = [1, 2, 3]


def test_checkpoint_carrying_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"format": FORMAT, "model": {}, "gadget": _Gadget()}, path)
    with pytest.raises(
        UnsafeCheckpointError, match="refusing to load .*pickled Python object"
    ) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert "_Gadget" in text and str(path) in text
    assert "weights_only" not in text and "\x1b" not in text  # our words, no torch advice
    with pytest.raises(UnsafeCheckpointError):
        _trainer(tmp_path).fit(_NoisyMLP(), mlp_data(16), resume=True)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"format": FORMAT, "value": torch.tensor(1.0)}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"format": FORMAT, "value": torch.tensor(2.0)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["value"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_rng_states_round_trip():
    state = rng_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    set_rng_states(state)
    got = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_resume_without_checkpoint_starts_fresh_and_finished_run_stays_finished(tmp_path):
    x, y = mlp_data(32)
    first = _NoisyMLP()
    _trainer(tmp_path, max_epochs=2).fit(first, (x, y), resume=True)  # nothing to resume
    again = _NoisyMLP(seed=5)
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(again, (x, y), resume=True)  # already done: loads and trains no further
    for k, v in params_of(first).items():
        assert torch.equal(v, params_of(again)[k])
    more = _trainer(tmp_path, max_epochs=3)
    more.fit(again, (x, y), resume=True)  # a longer budget continues from epoch 2
    assert more.epoch == 3 and more.step == 12


def test_a_plain_state_dict_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not an ebm.train checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
