"""Precision, EMA, callbacks and early stopping, metrics CSV, progress bar and TensorBoard."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import torch
from _train_models import MLP, Regression, mlp_data, regression_data
from torch import nn

from ebm.train import EMA, Callback, EarlyStopping, Trainer
from ebm.train.precision import Precision
from ebm.train.progress import progress_enabled


class _DtypeProbe(Regression):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def training_step(self, batch):
        x, y = batch
        out = self(x)
        self.seen.add(out.dtype)
        return nn.functional.mse_loss(out.float(), y)


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16", torch.bfloat16), ("16-mixed", torch.float16)]
)
def test_mixed_precision_autocasts_the_forward_and_keeps_fp32_weights(precision, dtype):
    x, y = regression_data(128)
    model = _DtypeProbe()
    trainer = Trainer(max_epochs=30, batch_size=32, seed=0, precision=precision, progress=False)
    trainer.fit(model, (x, y))
    assert model.seen == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(design, y.unsqueeze(-1)).solution.squeeze(-1)
    got = torch.cat([model.lin.weight.squeeze(0), model.lin.bias]).detach()
    torch.testing.assert_close(got, solution, atol=5e-2, rtol=0)  # half-precision matmuls
    has_scaler = Precision(precision, torch.device("cpu")).scaler is not None
    assert has_scaler == (precision == "16-mixed")


def test_ema_follows_its_definition_and_is_used_for_validation():
    x, y = regression_data(64)
    snapshots = []

    class Snapshot(Callback):
        def on_step_end(self, trainer, model, outputs):
            snapshots.append(model.lin.weight.detach().clone())

    model = Regression(lr=0.05)
    start = model.lin.weight.detach().clone()
    trainer = Trainer(
        max_epochs=3, batch_size=16, seed=0, ema_decay=0.8, callbacks=[Snapshot()], progress=False
    )
    trainer.fit(model, (x, y), val_data=(x, y))
    expected = start
    for w in snapshots:
        expected = 0.8 * expected + 0.2 * w
    torch.testing.assert_close(trainer.ema.shadow["lin.weight"], expected)
    with trainer.ema.swap(model):
        ema_loss = nn.functional.mse_loss(model(x), y).item()
    assert trainer.history[-1]["val_loss"] == pytest.approx(ema_loss, rel=1e-6)
    trained_loss = nn.functional.mse_loss(model(x), y).item()
    assert trained_loss != pytest.approx(ema_loss, rel=1e-6)  # swap restored the trained weights


class _ScriptedValidation(Regression):
    """Validation loss follows a fixed script, one value per epoch."""

    def __init__(self, script):
        super().__init__()
        self.script, self.calls = script, 0

    def validation_step(self, batch):
        value = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return {"loss": torch.tensor(value)}


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    script = [5.0, 4.0, 3.0, 3.05, 2.999, 3.2, 3.1, 1.0, 0.5]
    stopper = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)
    trainer = Trainer(max_epochs=9, batch_size=None, callbacks=[stopper], progress=False)
    trainer.fit(_ScriptedValidation(script), regression_data(8), val_data=regression_data(4))
    # best 3.0 at epoch 2; 3.05, 2.999 (not by min_delta), 3.2 fail to improve: stop after epoch 5
    assert trainer.epoch == 6 and stopper.stopped_epoch == 5
    assert stopper.best == 3.0
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest")


def test_early_stopping_needs_a_logged_metric():
    trainer = Trainer(max_epochs=2, callbacks=[EarlyStopping("val_acc")], progress=False)
    with pytest.raises(ValueError, match="val_acc"):
        trainer.fit(Regression(), regression_data(8))


def test_callback_hooks_fire_in_order(tmp_path):
    events = []

    class Recorder(Callback):
        def __getattribute__(self, name):
            if name.startswith("on_"):
                return lambda trainer, model, *args: events.append(name)
            return super().__getattribute__(name)

    trainer = Trainer(
        max_epochs=2, batch_size=4, ckpt_dir=tmp_path, callbacks=[Recorder()], progress=False
    )
    trainer.fit(Regression(), regression_data(8), val_data=regression_data(4))
    epoch = [
        "on_epoch_start",
        "on_step_end",
        "on_step_end",
        "on_validation_end",
        "on_epoch_end",
        "on_checkpoint",
    ]
    assert events == ["on_fit_start", *epoch, *epoch, "on_fit_end"]


def test_metrics_csv_mirrors_history(tmp_path):
    trainer = Trainer(
        max_epochs=3,
        batch_size=16,
        log_every_n_steps=3,
        log_dir=tmp_path,
        progress=False,
        tensorboard=False,
    )
    trainer.fit(Regression(), regression_data(64), val_data=regression_data(16))
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(trainer.history)
    for row, logged in zip(rows, trainer.history):
        for key, value in logged.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-12)
        assert all(row[k] == "" for k in row if k not in logged)


def test_tensorboard_is_optional(tmp_path):
    kwargs = dict(max_epochs=2, batch_size=16, log_dir=tmp_path, progress=False)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ImportError, match="pip install"):
            Trainer(tensorboard=True, **kwargs).fit(Regression(), regression_data(32))
        Trainer(tensorboard="auto", **kwargs).fit(Regression(), regression_data(32))
        assert not (tmp_path / "tensorboard").exists()
    else:
        Trainer(tensorboard=True, **kwargs).fit(Regression(), regression_data(32))
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_progress_bar_shows_loss_and_rate(capsys, monkeypatch):
    trainer = Trainer(max_epochs=1, batch_size=8, progress=True, log_every_n_steps=2)
    trainer.fit(MLP(), mlp_data(64))
    err = capsys.readouterr().err
    assert "loss=" in err and "step/s" in err
    monkeypatch.setenv("CI", "true")
    assert progress_enabled("auto") is False
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert progress_enabled("auto") is True
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert progress_enabled("auto") is False


def test_reduce_lr_on_plateau_watches_the_monitored_metric():
    class Plateau(_ScriptedValidation):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

    trainer = Trainer(max_epochs=4, batch_size=None, progress=False)
    trainer.fit(Plateau([3.0, 2.0, 2.5, 2.6]), regression_data(8), val_data=regression_data(4))
    # the row shows the lr used in that epoch; it halves after each epoch without improvement
    assert [h["lr"] for h in trainer.history] == [1.0, 1.0, 1.0, 0.5]


def test_ema_validates_decay_and_model_by_name():
    net = nn.Linear(2, 1)
    for bad in (0.0, 1.0, -0.5, 1.5, float("nan"), float("inf"), "0.9", True):
        with pytest.raises(ValueError, match=r"^decay must be"):
            EMA(net, bad)
        with pytest.raises(ValueError, match=r"^ema_decay must be"):
            Trainer(ema_decay=bad)  # at construction, before any training
    for not_a_model in (3, "net"):
        with pytest.raises(ValueError, match=r"^model must be a torch.nn.Module"):
            EMA(not_a_model, 0.9)
    ema = EMA(net, 0.9)
    for method in (ema.update, ema.copy_to, ema.swap):  # swap: at the call, not at `with`
        with pytest.raises(ValueError, match=r"^model must be a torch.nn.Module"):
            method(3)
        with pytest.raises(ValueError, match=r"^model must have the tensors"):
            method(nn.Linear(2, 1, bias=False))  # a KeyError before
    # the update is the definition: shadow <- 0.9 shadow + 0.1 param
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.shadow["weight"], start + 0.1)


def test_ema_state_dict_round_trips_and_load_refuses_another_model_before_changing():
    net = nn.Linear(2, 1)
    ema = EMA(net, 0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    saved = {"decay": 0.99, "shadow": {k: v.clone() for k, v in ema.shadow.items()}}
    other = EMA(nn.Linear(2, 1), 0.5)
    other.load_state_dict(saved)
    assert other.decay == 0.99
    for name, value in saved["shadow"].items():
        torch.testing.assert_close(other.shadow[name], value)
    before = {k: v.clone() for k, v in other.shadow.items()}
    bad_states = [
        ({"decay": 0.9, "shadow": {"weight": saved["shadow"]["weight"]}}, r"names differ.*bias"),
        ({"decay": 0.9, "shadow": {**saved["shadow"], "extra": torch.zeros(1)}}, r"names differ"),
        ({"decay": 0.9, "shadow": {**saved["shadow"], "weight": torch.zeros(3, 2)}}, r"shape"),
        ({"decay": 1.5, "shadow": saved["shadow"]}, r"^state\['decay'\] must be"),
    ]
    for state, match in bad_states:
        with pytest.raises(ValueError, match=match):
            other.load_state_dict(state)
        assert other.decay == 0.99  # nothing changed
        for name, value in before.items():
            torch.testing.assert_close(other.shadow[name], value)


def test_trainer_num_workers_and_early_stopping_min_delta_are_validated_by_name():
    for bad in (-1, 1.5, float("nan"), "2", True):
        with pytest.raises(ValueError, match=r"^num_workers must be"):
            Trainer(num_workers=bad)
    for bad in (-0.1, float("inf"), float("nan"), "0.1", True):
        with pytest.raises(ValueError, match=r"^min_delta must be"):
            EarlyStopping(min_delta=bad)
    assert EarlyStopping(min_delta=0).min_delta == 0
