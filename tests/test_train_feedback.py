"""What training tells the user: numpy inputs, the progress bar and the end-of-fit summary, and
checkpoint folders (keep_last's default, refusing to write over an earlier run)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _train_models import MLP, Regression, mlp_data, params_of, regression_data
from torch import nn

from ebm.train import EarlyStopping, Trainer, load_checkpoint
from ebm.train import trainer as trainer_module
from ebm.train.logs import StepBuffer
from ebm.train.progress import (
    fit_summary,
    format_summary,
    planned_steps,
    progress_enabled,
    progress_stream,
)


class Classifier(nn.Module):
    """Softmax regression: integer labels must reach cross_entropy as integers."""

    def __init__(self, d: int = 3, k: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(d, k)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(k, d, generator=g))
            self.lin.bias.zero_()

    def training_step(self, batch):
        x, y = batch
        return nn.functional.cross_entropy(self.lin(x), y)

    def validation_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self.lin(x), y)}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _classification(n=48):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


# --- numpy in, the tensor path's result out ---------------------------------------------------
def test_numpy_labels_stay_integers_and_train_like_tensors():
    x, y = _classification()
    reference = Classifier()
    t_ref = Trainer(max_epochs=3, batch_size=8, seed=0, progress=False)
    t_ref.fit(reference, (x, y), val_data=[x, y])
    x_np, y_np = x.double().numpy(), y.numpy()
    x_np.setflags(write=False)  # read-only arrays (e.g. memory-mapped) are copied, not warned on
    model = Classifier()
    trainer = Trainer(max_epochs=3, batch_size=8, seed=0, progress=False)
    trainer.fit(model, (x_np, y_np), val_data=[x_np, y_np])
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert [h["val_loss"] for h in trainer.history] == pytest.approx(
        [h["val_loss"] for h in t_ref.history], rel=1e-6
    )


def test_a_single_numpy_array_and_bools_follow_the_tensor_rules():
    class Mean(nn.Module):  # loss = (mean(x) - w)^2: a single array, batches are tensors
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def training_step(self, batch):
            assert isinstance(batch, torch.Tensor) and batch.dtype == torch.float32
            return (batch.float().mean() - self.w) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    data = np.random.default_rng(0).normal(2.0, 1.0, size=(40, 2))
    a, b = Mean(), Mean()
    Trainer(max_epochs=4, batch_size=10, seed=0, progress=False).fit(a, data)
    Trainer(max_epochs=4, batch_size=10, seed=0, progress=False).fit(b, torch.from_numpy(data))
    assert a.w.item() == pytest.approx(b.w.item(), rel=1e-6)
    assert 1.0 < a.w.item() < 3.0  # it learnt the mean, not a truncated integer

    seen = []

    class Masks(Mean):
        def training_step(self, batch):
            seen.append(batch.dtype)
            return self.w**2

    mask = np.ones((6, 2), dtype=bool)
    Trainer(max_epochs=1, batch_size=3, progress=False).fit(Masks(), mask)
    Trainer(max_epochs=1, batch_size=3, progress=False).fit(Masks(), torch.from_numpy(mask))
    assert seen == [torch.bool] * 4  # as a bool tensor is handed over today


def test_unsupported_data_names_the_argument_and_the_type():
    x, y = regression_data(8)
    with pytest.raises(ValueError, match=r"val_data\[1\].*dtype object"):
        Trainer(max_epochs=1, progress=False).fit(
            Regression(), (x, y), val_data=(x.numpy(), np.array([None] * 8, dtype=object))
        )
    with pytest.raises(ValueError, match=r"train_data.*dtype <U1"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), np.array(list("abcd")))
    with pytest.raises(ValueError, match=r"train_data must be .* got list of list .*numpy"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), x.tolist())
    with pytest.raises(ValueError, match=r"train_data must be .* got dict"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), {"x": x})


# --- progress: when it shows, what it shows ---------------------------------------------------
def _terminal(monkeypatch, stdout: bool, stderr: bool):
    monkeypatch.setattr("sys.stdout.isatty", lambda: stdout)
    monkeypatch.setattr("sys.stderr.isatty", lambda: stderr)


def test_auto_progress_needs_a_terminal_and_no_ci(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    _terminal(monkeypatch, False, False)
    assert not progress_enabled("auto")
    Trainer(max_epochs=2, batch_size=8).fit(MLP(), mlp_data(32))  # the default: "auto"
    assert capsys.readouterr() == ("", "")
    _terminal(monkeypatch, True, False)
    assert progress_stream("auto") is __import__("sys").stdout
    _terminal(monkeypatch, False, True)
    assert progress_stream("auto") is __import__("sys").stderr
    for name, value in [("CI", "true"), ("CI", "1"), ("TERM", "dumb")]:
        monkeypatch.setenv(name, value)
        assert not progress_enabled("auto"), (name, value)
        assert progress_enabled(True)  # forced
        monkeypatch.delenv(name)
    monkeypatch.setenv("CI", "false")
    assert progress_enabled("auto")
    assert not progress_enabled(False)


def test_forced_progress_is_one_bar_for_the_whole_fit_then_a_summary(capsys, tmp_path):
    trainer = Trainer(
        max_epochs=3, batch_size=8, progress=True, log_every_n_steps=2, ckpt_dir=tmp_path
    )
    trainer.fit(MLP(), mlp_data(64), val_data=mlp_data(16, seed=2))
    out, err = capsys.readouterr()
    assert out == ""
    frames = [f for f in re.split(r"[\r\n]", err) if "step/s" in f]
    totals = {re.search(r"\d+/(\d+) \[", f).group(1) for f in frames}
    assert totals == {"24"}  # 3 epochs x 8 batches: one bar, never one per epoch
    last = frames[-1]
    assert last.startswith("100%") and "24/24" in last and "loss=" in last
    assert "epoch=3/3" in last and "val_loss=" in last
    shown = [int(e) for f in frames for e in re.findall(r"epoch=(\d+)/3", f)]
    assert shown == sorted(shown) and set(shown) <= {1, 2, 3}
    assert err.endswith("\n")  # the bar stays on screen; the summary follows it
    summary_line = err.rstrip("\n").splitlines()[-1]
    assert summary_line == format_summary(trainer.summary)
    assert summary_line.startswith("fit: 24 steps, 3 epochs in ")
    val = trainer.history[-1]["val_loss"]
    assert f"val_loss {val:.4g}" in summary_line
    assert summary_line.endswith(f"checkpoint {tmp_path / 'last.pt'}")


def test_planned_steps():
    assert planned_steps(3, None, 8) == 24
    assert planned_steps(3, 10, 8) == 10
    assert planned_steps(None, 10, 8) == 10
    assert planned_steps(3, 100, None) == 100
    assert planned_steps(3, None, None) is None


def test_summary_counts_what_ran(tmp_path):
    x, y = mlp_data(64)  # 8 batches per epoch
    trainer = Trainer(
        max_steps=11, max_epochs=5, batch_size=8, progress=False, log_every_n_steps=1,
        ckpt_dir=tmp_path, ckpt_every_n_steps=4,
    )  # fmt: skip
    trainer.fit(MLP(), (x, y))
    s = trainer.summary
    assert (s["steps"], s["steps_run"], s["epochs"], s["stopped_by"]) == (
        11,
        11,
        1.375,
        "max_steps",
    )
    step_losses = [h["loss"] for h in trainer.history if "batch" in h and h["epoch"] == 1]
    assert len(step_losses) == 3
    assert s["loss"] == pytest.approx(sum(step_losses) / 3, rel=1e-9)  # the last epoch's mean
    assert s["val_loss"] is None and s["checkpoint"] == str(tmp_path / "last.pt")
    assert s["steps_per_second"] == pytest.approx(11 / s["seconds"])
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 11

    resumed = Trainer(max_epochs=2, batch_size=8, progress=False, ckpt_dir=tmp_path)
    resumed.fit(MLP(), (x, y), resume=True)  # from step 11 to the end of epoch 2 (step 16)
    s = resumed.summary
    assert (s["steps"], s["steps_run"], s["epochs"], s["stopped_by"]) == (16, 5, 2.0, "max_epochs")
    assert "16 steps (11 before resuming), 2 epochs" in format_summary(s)
    assert s["loss"] == resumed.history[-1]["loss"]  # the epoch this call finished
    assert s["val_loss"] is None  # this call validated nothing

    validated = Trainer(max_epochs=2, batch_size=8, progress=False)
    validated.fit(MLP(), (x, y), val_data=(x[:8], y[:8]))
    rows = len(validated.history)  # rows before first_row count as restored, not this call's
    assert fit_summary(validated, 0, 1.0, 8, first_row=rows)["val_loss"] is None
    assert fit_summary(validated, 0, 1.0, 8)["val_loss"] == validated.history[-1]["val_loss"]

    stopped = Trainer(max_epochs=50, batch_size=None, progress=False)
    stopped.callbacks.append(EarlyStopping("loss", patience=0, min_delta=1e9))
    stopped.fit(MLP(), (x, y))
    assert stopped.summary["stopped_by"] == "callback" and stopped.summary["steps"] == 2
    assert "stopped early by a callback" in format_summary(stopped.summary)


def test_a_shown_bar_flushes_on_time_and_changes_no_result(monkeypatch, capsys):
    """A bar adds time-based flushes (REFRESH_SECONDS); the history and weights are the same."""
    flushes = []
    original = StepBuffer.flush

    def counting(self):
        flushes.append(len(self.records))
        return original(self)

    monkeypatch.setattr(StepBuffer, "flush", counting)
    x, y = mlp_data(64)
    runs = {}
    for progress in (False, True):
        flushes.clear()
        if progress:
            monkeypatch.setattr(trainer_module, "REFRESH_SECONDS", 0.0)  # due at every step
        model = MLP()
        trainer = Trainer(max_epochs=2, batch_size=8, seed=0, progress=progress)
        trainer.fit(model, (x, y))
        history = [{k: v for k, v in h.items() if k != "epoch_time"} for h in trainer.history]
        runs[progress] = (history, params_of(model), [n for n in flushes if n])
    capsys.readouterr()
    assert runs[False][2] == [8, 8]  # one flush per epoch: 16 steps < log_every_n_steps
    assert runs[True][2] == [1] * 16  # one per step when the refresh interval is always due
    assert runs[True][0] == runs[False][0]
    for k, v in runs[False][1].items():
        assert torch.equal(v, runs[True][1][k]), k


# --- checkpoint folders -------------------------------------------------------------------------
def _numbered(folder):
    return sorted(p.name for p in folder.glob("step*.pt"))


def test_keep_last_defaults_to_three_and_none_keeps_all(tmp_path):
    x, y = regression_data(16)
    Trainer(max_epochs=5, batch_size=None, progress=False, ckpt_dir=tmp_path / "a").fit(
        Regression(), (x, y)
    )
    assert _numbered(tmp_path / "a") == [f"step{s:08d}.pt" for s in (3, 4, 5)]
    Trainer(
        max_epochs=5, batch_size=None, progress=False, ckpt_dir=tmp_path / "b", keep_last=None
    ).fit(Regression(), (x, y))
    assert _numbered(tmp_path / "b") == [f"step{s:08d}.pt" for s in range(1, 6)]


def test_an_earlier_runs_checkpoints_are_not_overwritten_without_a_flag(tmp_path):
    x, y = regression_data(16)
    first = Regression()
    Trainer(max_epochs=5, batch_size=None, progress=False, ckpt_dir=tmp_path).fit(first, (x, y))
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")}
    model = Regression(seed=1)
    weights = params_of(model)
    with pytest.raises(ValueError) as info:
        Trainer(max_epochs=2, batch_size=None, progress=False, ckpt_dir=tmp_path).fit(model, (x, y))
    message = str(info.value)
    assert str(tmp_path) in message and "last.pt" in message
    assert "resume=True" in message and "overwrite=True" in message
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")} == before  # nothing touched
    assert all(torch.equal(v, params_of(model)[k]) for k, v in weights.items())

    # resume=True continues the earlier run: no refusal
    more = Trainer(max_epochs=6, batch_size=None, progress=False, ckpt_dir=tmp_path)
    more.fit(Regression(), (x, y), resume=True)
    assert more.step == 6

    # overwrite=True starts afresh; the earlier files go when the new run saves its first one
    fresh = Trainer(
        max_epochs=2, batch_size=None, progress=False, ckpt_dir=tmp_path, overwrite=True
    )
    fresh.fit(model, (x, y))
    assert _numbered(tmp_path) == ["step00000001.pt", "step00000002.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 2
    torch.testing.assert_close(
        load_checkpoint(tmp_path / "last.pt")["model"]["lin.weight"], model.lin.weight
    )


def test_numbered_files_without_last_pt_also_count_as_an_earlier_run(tmp_path):
    x, y = regression_data(16)
    Trainer(max_epochs=2, batch_size=None, progress=False, ckpt_dir=tmp_path).fit(
        Regression(), (x, y)
    )
    (tmp_path / "last.pt").unlink()
    with pytest.raises(ValueError, match=r"step00000001\.pt.*no last\.pt here.*overwrite=True"):
        Trainer(max_epochs=1, batch_size=None, progress=False, ckpt_dir=tmp_path).fit(
            Regression(), (x, y), resume=True
        )


def test_overwrite_keeps_the_earlier_run_until_the_new_one_saves(tmp_path):
    x, y = regression_data(16)
    Trainer(max_epochs=2, batch_size=None, progress=False, ckpt_dir=tmp_path).fit(
        Regression(), (x, y)
    )
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")}

    class Fails(Regression):
        def training_step(self, batch):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Trainer(
            max_epochs=2, batch_size=None, progress=False, ckpt_dir=tmp_path, overwrite=True
        ).fit(Fails(), (x, y))
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")} == before
    with pytest.raises(ValueError, match="overwrite must be one of"):
        Trainer(overwrite="yes")
