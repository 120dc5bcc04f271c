"""Faults the Trainer must survive: non-finite gradients, mismatched or broken checkpoints,
failed writes, unusable paths, and data in other dtypes or containers.

Every test here fails on a trainer that writes NaN weights, resumes inexactly, half-loads a
checkpoint, or reports a torch internal instead of the file and the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_models import MLP, Regression, mlp_data, params_of, regression_data
from torch import nn

from ebm.train import (
    Callback,
    CheckpointError,
    CheckpointWriteError,
    NonFiniteGradientError,
    NonFiniteStateError,
    Trainer,
    UnsafeCheckpointError,
    load_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]


class _Kink(Regression):
    """A finite loss whose gradient is NaN on a poisoned batch (x[:, 0] == 99).

    ``0.01 * sqrt(|x₀ − 99| · scale)`` is 0 there, and d/dscale = 0.005 · |x₀ − 99| / sqrt(0)
    = 0 · inf = NaN: the derivative of sqrt at 0.
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def training_step(self, batch):
        x, y = batch
        kink = torch.sqrt((x[:, 0] - 99.0).abs() * self.scale).mean()
        return {"loss": nn.functional.mse_loss(self(x), y) + 0.01 * kink}


def _kinked(n=64, bad_rows=range(40, 48)):
    x, y = regression_data(n)
    x = x.clone()
    x[list(bad_rows), 0] = 99.0
    return x, y


def _finite(state_dict) -> bool:
    return all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())


# --- non-finite gradients -------------------------------------------------------------------
def test_the_kink_has_a_finite_loss_and_a_nan_gradient():
    model = _Kink()
    x, y = _kinked()
    out = model.training_step((x[40:48], y[40:48]))["loss"]
    out.backward()
    assert torch.isfinite(out) and torch.isnan(model.scale.grad)


def test_nan_gradient_with_finite_loss_raises_and_never_reaches_disk(tmp_path):
    x, y = _kinked()  # batch 5 of 8 is poisoned: step 6
    trainer = Trainer(
        max_epochs=2,
        batch_size=8,
        shuffle=False,
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=1,
        progress=False,
        log_every_n_steps=None,
    )
    with pytest.raises(NonFiniteGradientError) as err:
        trainer.fit(_Kink(), (x, y))
    message = str(err.value)
    assert "non-finite gradient at step 6 (epoch 0, batch 5)" in message
    assert "while the loss was finite ('loss' = " in message
    assert "last.pt is intact" in message
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["loop"]["step"] == 5 and _finite(state["model"])
    for path in tmp_path.glob("step*.pt"):
        assert _finite(load_checkpoint(path)["model"]), path


def test_nan_gradient_is_checked_with_grad_clip_too(tmp_path):
    x, y = _kinked()
    with pytest.raises(NonFiniteGradientError, match="step 6"):
        Trainer(max_epochs=1, batch_size=8, shuffle=False, grad_clip=1.0, progress=False).fit(
            _Kink(), (x, y)
        )


def test_nan_skip_skips_exactly_the_steps_with_a_nan_gradient():
    x, y = _kinked()
    skipping = _Kink()
    trainer = Trainer(max_epochs=2, batch_size=8, shuffle=False, nan_policy="skip", progress=False)
    trainer.fit(skipping, (x, y))
    assert [h["skipped"] for h in trainer.history] == [1.0, 2.0]
    keep = torch.cat([torch.arange(40), torch.arange(48, 64)])
    clean = _Kink()
    Trainer(max_epochs=2, batch_size=8, shuffle=False, progress=False).fit(
        clean, (x[keep], y[keep])
    )
    for (name, a), b in zip(skipping.named_parameters(), clean.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_nan_gradient_in_an_accumulation_window_drops_that_window():
    x, y = _kinked(bad_rows=range(8, 16))  # micro-batch 1: inside window 1 (micro-batches 0-3)
    skipping = _Kink()
    trainer = Trainer(
        max_epochs=1,
        batch_size=8,
        accumulate_grad_batches=4,
        shuffle=False,
        nan_policy="skip",
        progress=False,
    )
    trainer.fit(skipping, (x, y))
    assert trainer.history[-1]["skipped"] == 1.0 and trainer.updates == 1
    reference = _Kink()  # only window 2 (micro-batches 4-7) updates the weights
    opt = torch.optim.SGD(reference.parameters(), lr=reference.lr)
    for b in range(4, 8):
        (
            reference.training_step((x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8]))["loss"] / 4
        ).backward()
    opt.step()
    for a, b in zip(skipping.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class _ManualKink(_Kink):
    manual_optimization = True

    def training_step(self, batch, optimize):
        optimize(super().training_step(batch)["loss"])
        return {"scale": self.scale.detach()}


def test_nan_gradient_in_manual_optimisation_is_named_and_skippable():
    x, y = _kinked()
    with pytest.raises(NonFiniteGradientError, match=r"step 6 .*optimize\(index=0\) call 0"):
        Trainer(max_epochs=1, batch_size=8, shuffle=False, progress=False).fit(
            _ManualKink(), (x, y)
        )
    model = _ManualKink()
    trainer = Trainer(max_epochs=1, batch_size=8, shuffle=False, nan_policy="skip", progress=False)
    trainer.fit(model, (x, y))
    assert trainer.history[-1]["skipped"] == 1.0 and _finite(model.state_dict())


class _Poison(Callback):
    """Writes a NaN into a weight after step 3, behind the optimiser's back."""

    def on_step_end(self, trainer, model, outputs):
        if trainer.step == 3:
            with torch.no_grad():
                model.lin.weight[0, 0] = torch.nan


def test_non_finite_weights_are_never_written(tmp_path):
    trainer = Trainer(
        max_epochs=1,
        batch_size=8,
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=2,
        progress=False,
        callbacks=[_Poison()],
        nan_policy="skip",
    )
    with pytest.raises(NonFiniteStateError, match=r"model\['lin.weight'\] holds NaN"):
        trainer.fit(Regression(), regression_data(64))
    assert load_checkpoint(tmp_path / "last.pt")["loop"]["step"] == 2
    assert sorted(p.name for p in tmp_path.glob("step*.pt")) == ["step00000002.pt"]


# --- resume: validated first, all or nothing --------------------------------------------------
def _interrupted(tmp_path, **kw):
    """A run stopped mid-epoch 0 at step 3 (12 batches of 8 per epoch), checkpointed."""
    args = dict(max_epochs=2, batch_size=8, seed=0, ckpt_dir=tmp_path, progress=False)
    Trainer(**{**args, "max_steps": 3, **kw}).fit(MLP(), mlp_data(96))
    return args


@pytest.mark.parametrize(
    ("change", "field", "saved", "current"),
    [
        ({"batch_size": 16}, "batch_size", 8, 16),
        ({"accumulate_grad_batches": 2}, "accumulate_grad_batches", 1, 2),
        ({"shuffle": False}, "shuffle", True, False),
        ({"ema_decay": 0.9}, "ema", False, True),
        ({"precision": "16-mixed"}, "precision", "32", "16-mixed"),
    ],
)
def test_resume_with_another_setting_names_it_and_changes_nothing(
    tmp_path, change, field, saved, current
):
    args = _interrupted(tmp_path)
    model = MLP(seed=5)
    before = params_of(model)
    trainer = Trainer(**{**args, **change})
    with pytest.raises(ValueError, match=f"{field} is {current!r} in this run but {saved!r}"):
        trainer.fit(model, mlp_data(96), resume=True)
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k]), k


def test_resume_with_other_data_size_is_refused(tmp_path):
    args = _interrupted(tmp_path)
    with pytest.raises(ValueError, match="n_samples is 80 in this run but 96"):
        Trainer(**args).fit(MLP(), mlp_data(80), resume=True)


class _TwoOptimizers(MLP):
    def configure_optimizers(self):
        first, second = self.net[0], self.net[2]
        return [torch.optim.Adam(first.parameters()), torch.optim.Adam(second.parameters())]


class _Wider(MLP):
    def __init__(self):
        super().__init__(hidden=32)


@pytest.mark.parametrize(
    ("model_class", "message"),
    [
        (_TwoOptimizers, "the number of optimizers is 2 in this run but 1"),
        (_Wider, r"the shape of 'net.0.weight' is \(32, 4\) in this run but \(16, 4\)"),
    ],
)
def test_resume_into_another_architecture_or_optimisers_leaves_everything_untouched(
    tmp_path, model_class, message
):
    args = _interrupted(tmp_path)
    model = model_class()
    before = params_of(model)
    trainer = Trainer(**args)
    with pytest.raises(ValueError, match=message):
        trainer.fit(model, mlp_data(96), resume=True)
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k]), k
    assert all(not opt.state for opt in trainer._optimizers)  # no optimiser state was loaded


class _FailingExtraState(MLP):
    """Weights load, then set_extra_state fails: the weights must be rolled back."""

    def get_extra_state(self):
        return {"version": 1}

    def set_extra_state(self, state):
        if state.get("version") == 1 and getattr(self, "refuse", False):
            raise RuntimeError("extra state from an incompatible version")


def test_a_load_failing_half_way_is_rolled_back(tmp_path):
    args = dict(max_epochs=2, batch_size=8, seed=0, ckpt_dir=tmp_path, progress=False)
    Trainer(**{**args, "max_steps": 3}).fit(_FailingExtraState(), mlp_data(96))
    model = _FailingExtraState(seed=5)
    model.refuse = True
    before = params_of(model)
    trainer = Trainer(**args)
    with pytest.raises(RuntimeError, match="incompatible version"):
        trainer.fit(model, mlp_data(96), resume=True)
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k]), k
    assert all(not opt.state for opt in trainer._optimizers)


def test_the_checkpoint_records_what_exact_resumption_depends_on(tmp_path):
    _interrupted(tmp_path, accumulate_grad_batches=3)
    run = load_checkpoint(tmp_path / "last.pt")["run"]
    assert run == {
        "batch_size": 8,
        "n_samples": 96,
        "batches_per_epoch": 12,
        "world_size": 1,
        "accumulate_grad_batches": 3,
        "shuffle": True,
        "drop_last": False,
        "precision": "32",
        "ema": False,
    }


# --- broken checkpoint files ------------------------------------------------------------------
def _broken_files(tmp_path) -> dict[str, Path]:
    _interrupted(tmp_path / "good")
    good = (tmp_path / "good" / "last.pt").read_bytes()
    g = np.random.default_rng(0)
    contents = {
        "truncated": (good[: len(good) // 2], "truncated or corrupt"),
        "empty": (b"", "is empty"),
        "random": (g.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a torch.save archive"),
        "zip-garbage": (b"PK\x03\x04" + bytes(200), "truncated or corrupt"),
    }
    files = {}
    for name, (data, reason) in contents.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "last.pt").write_bytes(data)
        files[name] = (folder, reason)
    return files


def test_truncated_empty_and_garbled_files_raise_one_clear_error(tmp_path):
    for name, (folder, reason) in _broken_files(tmp_path).items():
        path = folder / "last.pt"
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        text = str(err.value)
        assert str(path) in text and reason in text, (name, text)
        assert not isinstance(err.value, UnsafeCheckpointError), name
        assert isinstance(err.value, ValueError)
        model = MLP(seed=5)
        before = params_of(model)
        with pytest.raises(CheckpointError, match=reason):
            Trainer(max_epochs=1, batch_size=8, ckpt_dir=folder, progress=False).fit(
                model, mlp_data(96), resume=True
            )
        for k, v in before.items():
            assert torch.equal(v, model.state_dict()[k]), (name, k)


def test_last_pt_that_is_a_folder_fails_before_training(tmp_path):
    (tmp_path / "last.pt").mkdir()
    model = MLP()
    before = params_of(model)
    for resume in (False, True):
        with pytest.raises(ValueError, match="last.pt, which is not a regular file"):
            Trainer(max_epochs=1, batch_size=8, ckpt_dir=tmp_path, progress=False).fit(
                model, mlp_data(96), resume=resume
            )
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k]), k


# --- failed writes ----------------------------------------------------------------------------
_FSIZE_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, {tests!r})
    from _train_models import MLP, mlp_data
    from ebm.train import Trainer, CheckpointWriteError
    args = dict(max_epochs=2, batch_size=8, seed=0, ckpt_dir={folder!r}, progress=False)
    Trainer(**args, max_steps=3).fit(MLP(), mlp_data(96))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # files over 1 KiB cannot be written
    try:
        Trainer(**args).fit(MLP(), mlp_data(96), resume=True)
    except CheckpointWriteError as err:
        print("ERROR:", err)
    """
)


def test_a_write_over_the_file_size_limit_says_why_and_keeps_last_pt(tmp_path):
    script = _FSIZE_SCRIPT.format(tests=str(ROOT / "tests"), folder=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("ERROR: could not write the checkpoint") and "File too large" in line
    assert "enforce fail" not in line and "unexpected pos" not in line
    state = load_checkpoint(tmp_path / "last.pt")  # the previous one, complete
    assert state["loop"]["step"] == 3
    assert not list(tmp_path.glob(".*tmp"))


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no process can write into: chmod for users, the immutable flag for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)]).returncode != 0:
        pytest.skip("cannot make a read-only folder as root here (no chattr +i)")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


class _FreezeFolder(Callback):
    """Makes the checkpoint folder read-only after the first checkpoint."""

    def __init__(self, freeze):
        self.freeze = freeze

    def on_checkpoint(self, trainer, model, path):
        self.freeze()


def test_a_folder_turned_read_only_gives_a_clear_error_and_keeps_last_pt(
    tmp_path, read_only_folder
):
    with pytest.raises(
        ValueError, match="ckpt_dir .* is not writable: (Permission denied|Operation not permitted)"
    ):
        Trainer(max_epochs=1, ckpt_dir=read_only_folder, progress=False).fit(
            Regression(), regression_data(16)
        )
    # mid-run: the first checkpoint is written, then the folder becomes read-only
    folder = tmp_path / "run"
    folder.mkdir()
    frozen = []

    def freeze():
        if not frozen:
            if os.geteuid() != 0:
                folder.chmod(0o555)
            else:
                subprocess.run(["chattr", "+i", str(folder)], check=True)
            frozen.append(True)

    try:
        with pytest.raises(
            CheckpointWriteError,
            match="could not write the checkpoint .*step00000004.pt: (Permission denied|Operation not permitted)",
        ):
            Trainer(
                max_epochs=1,
                batch_size=8,
                ckpt_dir=folder,
                ckpt_every_n_steps=2,
                progress=False,
                callbacks=[_FreezeFolder(freeze)],
            ).fit(Regression(), regression_data(64))
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert load_checkpoint(folder / "last.pt")["loop"]["step"] == 2


# --- data: numpy, dtypes, non-finite --------------------------------------------------------
def test_numpy_and_float64_data_train_like_float32_tensors():
    x, y = regression_data(64)
    reference = Regression()
    Trainer(max_epochs=2, batch_size=8, seed=0, progress=False).fit(reference, (x, y))
    for data in [(x.numpy(), y.numpy()), (x.double(), y.double()), [x.double().numpy(), y]]:
        model = Regression()
        Trainer(max_epochs=2, batch_size=8, seed=0, progress=False).fit(model, data)
        for a, b in zip(model.parameters(), reference.parameters()):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_non_finite_training_data_is_rejected_before_training():
    x, y = regression_data(64)
    y = y.clone()
    y[3] = torch.inf
    model = Regression()
    before = params_of(model)
    with pytest.raises(
        ValueError, match=r"train_data\[1\] contains NaN or inf values \(0 NaN, 1 inf\)"
    ):
        Trainer(max_epochs=1, progress=False).fit(model, (x, y))
    with pytest.raises(ValueError, match="val_data contains NaN"):
        Trainer(max_epochs=1, progress=False).fit(
            model, (x, y.nan_to_num()), val_data=x * torch.nan
        )
    for k, v in before.items():
        assert torch.equal(v, model.state_dict()[k]), k


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_gradient_check_flags_exactly_the_non_finite_gradients(dtype):
    from ebm.train.steps import GradientCheck

    g = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.randn(5, 3, generator=g).to(dtype)) for _ in range(2)]
    params.append(nn.Parameter(torch.randn(4, generator=g).double()))  # a second dtype group
    check = GradientCheck(params)
    assert check() is None  # no gradients yet
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
    kept = [p.grad.clone() for p in params]
    assert check().item() == 0.0
    for i in range(3):
        for bad in (torch.nan, torch.inf, -torch.inf):
            saved = params[i].grad.clone()
            params[i].grad.view(-1)[2] = bad
            assert check().item() > 0, (i, bad)
            params[i].grad = saved
    for p, k in zip(params, kept):  # the check scales by exactly 1
        assert torch.equal(p.grad, k)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, to run out of space for real (needs root and mount; skipped otherwise)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


class _FillDisk(Callback):
    """Fills the checkpoint's disk after the first checkpoint, leaving a few bytes."""

    def on_checkpoint(self, trainer, model, path):
        if trainer.step == 2:
            with contextlib.suppress(OSError), open(path.parent / "filler", "wb") as f:
                while True:  # until ENOSPC (raised by a write or by the close)
                    f.write(b"\0" * 4096)
                    f.flush()


def test_a_full_disk_says_no_space_and_keeps_last_pt(tiny_disk):
    with pytest.raises(CheckpointWriteError, match="No space left on device") as err:
        Trainer(
            max_epochs=1,
            batch_size=8,
            ckpt_dir=tiny_disk,
            ckpt_every_n_steps=2,
            progress=False,
            callbacks=[_FillDisk()],
        ).fit(Regression(), regression_data(64))
    assert "last.pt is untouched" in str(err.value) and "enforce fail" not in str(err.value)
    assert load_checkpoint(tiny_disk / "last.pt")["loop"]["step"] == 2
    assert not list(tiny_disk.glob(".*tmp"))
