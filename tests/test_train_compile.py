"""Trainer(compile=True): the same training as eager, with checkpoints free of ``_orig_mod.``.

Compiling even a two-layer MLP takes 15-25 s on the 2-core CI machine (torch 2.13, inductor,
measured under load), so every test that compiles is marked slow; the argument check is fast.
"""

from __future__ import annotations

import pytest
import torch
from _train_models import MLP, Regression, mlp_data, params_of, regression_data
from torch import nn

from ebm.train import NonFiniteGradientError, Trainer, load_checkpoint


@pytest.mark.parametrize("bad", ["yes", 1, None, {"mode": "max-autotune"}])
def test_compile_must_be_a_bool(bad):
    with pytest.raises(ValueError, match=r"compile must be one of \(False, True\), got"):
        Trainer(max_epochs=1, compile=bad)


def _fit(model, data, compile, **kw):
    trainer = Trainer(
        max_epochs=2,
        batch_size=32,  # 96 rows: three equal batches, so one compiled graph
        seed=0,
        shuffle=True,
        progress=False,
        log_every_n_steps=1,
        compile=compile,
        **kw,
    )
    trainer.fit(model, data)
    return trainer


@pytest.mark.slow
def test_compiled_fit_matches_eager_and_checkpoints_are_interchangeable(tmp_path):
    data = mlp_data(96)
    eager_model, compiled_model = MLP(seed=0), MLP(seed=0)
    eager = _fit(eager_model, data, False, ema_decay=0.9, ckpt_dir=tmp_path / "eager")
    compiled = _fit(compiled_model, data, True, ema_decay=0.9, ckpt_dir=tmp_path / "compiled")
    # the same losses step by step and the same weights, to float32 reordering tolerance
    losses_e = torch.tensor([r["loss"] for r in eager.history if "batch" in r])
    losses_c = torch.tensor([r["loss"] for r in compiled.history if "batch" in r])
    assert len(losses_e) == 6
    torch.testing.assert_close(losses_c, losses_e, rtol=1e-4, atol=1e-6)
    for (k, a), (_, b) in zip(params_of(eager_model).items(), params_of(compiled_model).items()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=k)

    # the compiled run's checkpoint has the module's own keys, and loads into an eager model
    state = load_checkpoint(tmp_path / "compiled" / "last.pt")
    assert set(state["model"]) == set(MLP().state_dict())
    fresh = MLP(seed=5)
    fresh.load_state_dict(state["model"])
    for k, v in params_of(fresh).items():
        torch.testing.assert_close(v, params_of(compiled_model)[k])
    # the EMA was kept of the real weights, under the module's own names
    assert set(state["ema"]["shadow"]) == set(MLP().state_dict())
    for k, v in eager.ema.state_dict()["shadow"].items():
        torch.testing.assert_close(state["ema"]["shadow"][k], v, rtol=1e-4, atol=1e-6, msg=k)

    # resume both ways: eager from the compiled checkpoint, compiled from the eager one
    reference = MLP(seed=0)
    Trainer(max_epochs=3, batch_size=32, seed=0, progress=False, ema_decay=0.9).fit(reference, data)
    for src, compile in (("compiled", False), ("eager", True)):
        model = MLP(seed=7)
        trainer = Trainer(
            max_epochs=3,
            batch_size=32,
            seed=0,
            progress=False,
            ema_decay=0.9,
            ckpt_dir=tmp_path / src,
            compile=compile,
        )
        trainer.fit(model, data, resume=True)
        assert trainer.step == 9
        for k, v in params_of(model).items():  # the same as three uninterrupted epochs
            torch.testing.assert_close(v, params_of(reference)[k], rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.slow
def test_a_torch_compiled_module_is_trained_as_its_original(tmp_path):
    x, y = regression_data(64)
    model = Regression()
    wrapped = torch.compile(model)
    assert any(k.startswith("_orig_mod.") for k in wrapped.state_dict())  # what we avoid
    trainer = Trainer(max_epochs=2, batch_size=16, progress=False, ckpt_dir=tmp_path)
    trainer.fit(wrapped, (x, y))
    assert set(load_checkpoint(tmp_path / "last.pt")["model"]) == {"lin.weight", "lin.bias"}
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]


class _Kink(Regression):
    """A finite loss whose gradient is NaN on rows with x₀ = 99 (the derivative of sqrt at 0;
    the same model as tests/test_train_reliability.py)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def training_step(self, batch):
        x, y = batch
        kink = torch.sqrt((x[:, 0] - 99.0).abs() * self.scale).mean()
        return {"loss": nn.functional.mse_loss(self(x), y) + 0.01 * kink}


@pytest.mark.slow
def test_compiled_fit_still_catches_a_nan_gradient_under_a_finite_loss():
    x, y = regression_data(64)
    x = x.clone()
    x[40:48, 0] = 99.0  # batch 5 of 8: step 6
    trainer = Trainer(
        max_epochs=1,
        batch_size=8,
        shuffle=False,
        progress=False,
        log_every_n_steps=None,
        compile=True,
    )
    with pytest.raises(NonFiniteGradientError, match=r"step 6 \(epoch 0, batch 5\)"):
        trainer.fit(_Kink(), (x, y))


class _TwoHeads(nn.Module):
    """Manual optimisation: two least-squares heads, each stepped by its own optimize call
    (inside a compiled training_step, optimize runs eagerly between graphs)."""

    manual_optimization = True

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def training_step(self, batch, optimize):
        x, y = batch
        la = (self.a(x).squeeze(-1) - y).pow(2).mean()
        optimize(la, 0)
        lb = (self.b(x).squeeze(-1) - y).pow(2).mean()
        optimize(lb, 1)
        return {"loss": la.detach() + lb.detach()}

    def configure_optimizers(self):
        return [
            torch.optim.SGD(self.a.parameters(), lr=0.1),
            torch.optim.SGD(self.b.parameters(), lr=0.1),
        ]


@pytest.mark.slow
# torch 2.13's dynamo itself warns while it wraps the loss tensors in the graph resumed after an
# optimize call (it reads .grad of a non-leaf): torch's warning, not ours
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_manual_optimisation_compiled_matches_eager():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    data = (x, x.sum(1))
    runs = []
    for compile in (False, True):
        model = _TwoHeads()
        trainer = Trainer(
            max_epochs=2,
            batch_size=16,
            seed=0,
            progress=False,
            log_every_n_steps=1,
            compile=compile,
        )
        trainer.fit(model, data)
        runs.append((torch.tensor([r["loss"] for r in trainer.history if "batch" in r]), model))
    (eager, m_eager), (compiled, m_compiled) = runs
    assert len(eager) == 8 and eager[-1] < eager[0]
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-6)
    for k, v in params_of(m_eager).items():
        torch.testing.assert_close(params_of(m_compiled)[k], v, rtol=1e-4, atol=1e-6, msg=k)
