"""RestartOnDivergence: a forced divergence restarts from last.pt with a lower learning rate and
fresh replay buffers, and training goes on."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from ebm.models import JEM
from ebm.sampling import ReplayBuffer
from ebm.train import Callback, RestartOnDivergence, Trainer, load_checkpoint


class Blowup(nn.Module):
    """A least-squares fit that, at the steps in ``blow_at``, poisons its weights and buffer
    (NaN weight, 1e9 buffer states) or reports a huge finite energy, as a diverging EBM would."""

    def __init__(self, blow_at=(), how="nan", schedule=False):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.3, -0.2]]))
            self.lin.bias.zero_()
        self.buffer = ReplayBuffer(8, (2,), seed=1)  # not the trainer seed's first draws
        self.blow_at, self.how, self.schedule, self.calls = set(blow_at), how, schedule, 0

    def training_step(self, batch):
        x, y = batch
        self.calls += 1
        loss = (self.lin(x).squeeze(1) - y).square().mean()
        energy = loss.detach()
        if self.calls in self.blow_at:
            with torch.no_grad():
                self.buffer.samples.fill_(1e9)
                if self.how == "nan":
                    self.lin.weight.fill_(float("nan"))
            if self.how == "nan":
                loss = (self.lin(x).squeeze(1) - y).square().mean()
            else:
                energy = torch.tensor(1e9)
        return {"loss": loss, "e_data": energy}

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        if not self.schedule:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Recorder(Callback):
    """Records the weights and buffer right after each step (after the restart callback)."""

    def __init__(self):
        self.weights, self.buffers = {}, {}

    def on_step_end(self, trainer, model, outputs):
        self.weights[trainer.step] = model.lin.weight.detach().clone()
        self.buffers[trainer.step] = model.buffer.samples.clone()


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 2, generator=g)
    return x, x @ torch.tensor([1.0, -2.0]) + 0.5


def _fit(tmp_path, model, restart, steps=12, **kw):
    recorder = Recorder()
    trainer = Trainer(
        max_steps=steps,
        batch_size=8,
        seed=0,
        progress=False,
        device="cpu",
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=2,
        log_every_n_steps=1,
        keep_last=None,
        callbacks=[restart, recorder],
        **kw,
    )
    return trainer.fit(model, _data()), recorder


@pytest.mark.parametrize("how", ["nan", "huge"])
@pytest.mark.parametrize("nan_policy", ["raise", "skip"])
def test_a_forced_divergence_restarts_from_the_last_checkpoint(tmp_path, how, nan_policy):
    model = Blowup(blow_at={5}, how=how)
    restart = RestartOnDivergence(threshold=1e6, lr_factor=0.5)
    with pytest.warns(RuntimeWarning, match="diverged at step 5"):
        trainer, rec = _fit(tmp_path, model, restart, nan_policy=nan_policy)
    # step 5 restarted from the step-4 checkpoint: the weights right after are its weights
    saved = load_checkpoint(tmp_path / "step00000004.pt")["model"]
    torch.testing.assert_close(rec.weights[5], saved["lin.weight"])
    # the replay buffer was re-seeded: not the poison, not the checkpoint's, inside the noise box
    assert rec.buffers[5].abs().max() <= 1.0
    assert not torch.equal(rec.buffers[5], saved["buffer.samples"])
    # training went on, with half the learning rate, and finished finite
    assert trainer.step == 12
    assert trainer._optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05)
    assert torch.isfinite(model.lin.weight).all()
    assert [r["step"] for r in restart.restarts] == [5]
    assert restart.restarts[0]["checkpoint"].endswith("last.pt")
    # the diverged step is not in the history; every logged value is finite
    steps = [row["step"] for row in trainer.history if "batch" in row]
    assert 5 not in steps and 6 in steps
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in trainer.history)


def test_the_learning_rate_drop_survives_a_scheduler_and_compounds(tmp_path):
    model = Blowup(blow_at={5, 9}, how="huge", schedule=True)
    restart = RestartOnDivergence(threshold=1e6, lr_factor=0.1)
    with pytest.warns(RuntimeWarning):
        trainer, _ = _fit(tmp_path, model, restart)
    assert len(restart.restarts) == 2
    # LambdaLR recomputes lr = base_lr · 1 at every step: the base was lowered too
    assert trainer._optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.01)
    assert restart.restarts[1]["lr_factor"] == pytest.approx(0.01)
    # the restarts are in the checkpoints: a resumed fit counts on
    state = load_checkpoint(tmp_path / "last.pt")["callbacks"][0]
    assert [r["step"] for r in state["restarts"]] == [5, 9]


def test_too_many_restarts_raise(tmp_path):
    model = Blowup(blow_at={5, 9}, how="huge")
    restart = RestartOnDivergence(threshold=1e6, max_restarts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="max_restarts=1"):
            _fit(tmp_path, model, restart)


def test_a_divergence_before_the_first_checkpoint_raises(tmp_path):
    model = Blowup(blow_at={1}, how="huge")
    with pytest.raises(FloatingPointError, match="before the first checkpoint"):
        _fit(tmp_path, model, RestartOnDivergence(threshold=1e6))


def test_threshold_and_monitor_decide_what_is_a_divergence(tmp_path):
    # a huge e_data is ignored when only the loss is monitored
    model = Blowup(blow_at={5}, how="huge")
    restart = RestartOnDivergence(threshold=1e6, monitor=("loss",))
    _fit(tmp_path / "a", model, restart)
    assert restart.restarts == []
    # below the threshold: nothing happens
    model = Blowup(blow_at={5}, how="huge")
    restart = RestartOnDivergence(threshold=1e10)
    _fit(tmp_path / "b", model, restart)
    assert restart.restarts == []


def test_restart_needs_a_ckpt_dir():
    trainer = Trainer(max_steps=2, progress=False, device="cpu", callbacks=[RestartOnDivergence()])
    with pytest.raises(ValueError, match="ckpt_dir"):
        trainer.fit(Blowup(), _data())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"lr_factor": 0.0}, "lr_factor"),
        ({"lr_factor": 1.5}, "lr_factor"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"monitor": 3}, "monitor"),
        ({"reset_buffers": "yes"}, "reset_buffers"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RestartOnDivergence(**kwargs)


def test_jem_restarts_and_reseeds_its_buffer(tmp_path):
    """The JEM model's buffer is found and re-drawn; its weights come back from last.pt."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 3, generator=g) * 2 - 1, torch.randint(0, 2, (32,), generator=g)
    net = nn.Linear(3, 2)
    model = JEM(net, (3,), 2, n_steps=2, buffer_size=16, seed=0)

    class Poison(Callback):  # make step 3's energies explode, as a diverged JEM's do
        def on_step_end(self, trainer, model, outputs):
            if trainer.step == 3:
                outputs["e_model"] = torch.tensor(float("inf"))
                with torch.no_grad():
                    model.buffer.samples.fill_(1e9)

    restart = RestartOnDivergence()
    trainer = Trainer(
        max_steps=6,
        batch_size=8,
        seed=0,
        progress=False,
        device="cpu",
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=2,
        callbacks=[Poison(), restart],
    )
    with pytest.warns(RuntimeWarning, match="fresh replay buffers"):
        trainer.fit(model, (x, y))
    assert [r["step"] for r in restart.restarts] == [3]
    assert model.buffer.samples.abs().max() < 10  # re-seeded, then moved by a few SGLD steps
    assert trainer._optimizers[0].param_groups[0]["lr"] == pytest.approx(0.5e-4)
