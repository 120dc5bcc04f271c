"""Crash recovery with a real process and a real SIGKILL: resume ends bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _train_models import MLP, mlp_data

from ebm.train import Trainer, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import os, signal, sys, time
import torch
sys.path.insert(0, {tests!r})
from _train_models import MLP, mlp_data
from ebm.train import Callback, Trainer

ckpt, delay, kill_at = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])


class KillAt(Callback):
    def on_step_end(self, trainer, model, outputs):
        if delay:
            time.sleep(delay)  # slow steps, so the parent's kill lands mid-epoch
        if trainer.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


x, y = mlp_data({n})
Trainer(max_epochs={epochs}, ckpt_dir=ckpt, callbacks=[KillAt()], **{trainer_args!r}).fit(MLP(seed=0), (x, y))
raise SystemExit("finished without being killed")
"""

TRAINER_ARGS = dict(batch_size=8, seed=3, progress=False, ckpt_every_n_steps=4)


def _script(tmp_path, n, epochs):
    path = tmp_path / "crash_run.py"
    text = SCRIPT.format(tests=str(ROOT / "tests"), n=n, epochs=epochs, trainer_args=TRAINER_ARGS)
    path.write_text(text)
    return path


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _fit_here(ckpt_dir, n, epochs, resume):
    """The same run in this process, on one thread like the child (bit-identical arithmetic)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = mlp_data(n)
        model = MLP(seed=0)
        trainer = Trainer(max_epochs=epochs, ckpt_dir=ckpt_dir, **TRAINER_ARGS)
        trainer.fit(model, (x, y), resume=resume)
    finally:
        torch.set_num_threads(threads)
    return model.state_dict()


def _assert_identical(ref: dict, got: dict):
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    # 96 samples / 8 = 12 steps per epoch; checkpoints every 4 steps; the child kills itself
    # with SIGKILL at step 18 (epoch 1, batch 5): two steps after the last checkpoint are lost.
    script, ckpt = _script(tmp_path, n=96, epochs=3), tmp_path / "ckpt"
    child = subprocess.run(
        [sys.executable, str(script), str(ckpt), "0", "18"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert load_checkpoint(ckpt / "last.pt")["loop"]["step"] == 16
    resumed = _fit_here(ckpt, 96, 3, resume=True)
    reference = _fit_here(tmp_path / "reference", 96, 3, resume=False)
    _assert_identical(reference, resumed)


@pytest.mark.slow
def test_sigkill_from_outside_at_a_random_moment(tmp_path):
    script, ckpt = _script(tmp_path, n=400, epochs=4), tmp_path / "ckpt"
    seed = int.from_bytes(os.urandom(2), "little")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ckpt), "0.01", "-1"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (ckpt / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.05 + (seed % 100) / 100)  # somewhere in the following steps
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, f"finished before the kill (seed {seed})"
    step = load_checkpoint(ckpt / "last.pt")["loop"]["step"]
    assert 0 < step < 200, step
    resumed = _fit_here(ckpt, 400, 4, resume=True)
    reference = _fit_here(tmp_path / "reference", 400, 4, resume=False)
    _assert_identical(reference, resumed)
