"""Bad input fails early and clearly; non-finite losses raise or are skipped."""

from __future__ import annotations

import pytest
import torch
from _train_models import Regression, regression_data
from torch import nn
from torch.utils.data import TensorDataset

from ebm.train import NonFiniteLossError, Trainer


class _Untrainable(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)


def test_model_without_training_step_is_a_type_error_explaining_the_contract():
    with pytest.raises(TypeError, match="training_step.*configure_optimizers"):
        Trainer(max_epochs=1, progress=False).fit(_Untrainable(), torch.zeros(4, 2))
    with pytest.raises(TypeError, match="nn.Module"):
        Trainer(max_epochs=1, progress=False).fit(object(), torch.zeros(4, 2))


@pytest.mark.parametrize(
    "data",
    [torch.zeros(0, 3), (torch.zeros(0, 3), torch.zeros(0)), TensorDataset(torch.zeros(0, 3))],
)
def test_empty_data_fails_before_training(data):
    model = Regression()
    before = model.lin.weight.detach().clone()
    with pytest.raises(ValueError, match="train_data is empty"):
        Trainer(max_epochs=1, progress=False).fit(model, data)
    assert torch.equal(model.lin.weight, before)


def test_mismatched_tensors_and_bad_arguments():
    with pytest.raises(ValueError, match="first dimension"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), (torch.zeros(4, 3), torch.zeros(5)))
    with pytest.raises(ValueError, match="train_data must be"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), [1, 2, 3])
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(max_epochs=1, batch_size=0, progress=False).fit(Regression(), regression_data(8))
    with pytest.raises(ValueError, match="nan_policy"):
        Trainer(nan_policy="ignore")
    with pytest.raises(ValueError, match="precision"):
        Trainer(precision="64")
    with pytest.raises(ValueError, match="max_epochs"):
        Trainer(max_epochs=0)
    with pytest.raises(ValueError, match="resume=True needs a ckpt_dir"):
        Trainer(max_epochs=1, progress=False).fit(Regression(), regression_data(8), resume=True)


def test_unwritable_ckpt_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    model = Regression()
    before = model.lin.weight.detach().clone()
    with pytest.raises(ValueError, match="ckpt_dir .* is not writable"):
        Trainer(max_epochs=1, ckpt_dir=blocker / "ckpt", progress=False).fit(
            model, regression_data(8)
        )
    assert torch.equal(model.lin.weight, before)  # nothing was trained


class _VAELike(Regression):
    """Returns a dict whose 'kl' term turns NaN on a poisoned batch (x[:, 0] == 99)."""

    def training_step(self, batch):
        x, y = batch
        recon = nn.functional.mse_loss(self(x), y)
        kl = torch.where(x[:, 0] == 99.0, torch.nan, 0.0).mean() + 0.01 * self.lin.bias.pow(2).sum()
        return {"loss": recon + kl, "recon": recon, "kl": kl}


def _poisoned(n=64, bad_rows=range(40, 48)):
    x, y = regression_data(n)
    x = x.clone()
    x[list(bad_rows), 0] = 99.0
    return x, y


def test_nan_raise_names_step_epoch_and_term_and_keeps_last_good_checkpoint(tmp_path):
    x, y = _poisoned()  # batch 5 of 8 (rows 40..47) is poisoned; 8 batches per epoch
    trainer = Trainer(
        max_epochs=3,
        batch_size=8,
        shuffle=False,
        ckpt_dir=tmp_path,
        ckpt_every_n_steps=4,
        progress=False,
        log_every_n_steps=None,
    )
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(_VAELike(), (x, y))
    message = str(err.value)
    assert "step 6 (epoch 0, batch 5)" in message
    assert "'kl' = nan" in message and "'recon'" not in message
    assert "last.pt is intact" in message
    from ebm.train import load_checkpoint

    state = load_checkpoint(tmp_path / "last.pt")
    assert state["loop"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_nan_skip_skips_exactly_the_bad_batches_and_counts_them():
    x, y = _poisoned()
    skipping = _VAELike()
    trainer = Trainer(max_epochs=2, batch_size=8, shuffle=False, nan_policy="skip", progress=False)
    trainer.fit(skipping, (x, y))
    assert [h["skipped"] for h in trainer.history] == [1.0, 2.0]
    assert all(torch.isfinite(p).all() for p in skipping.parameters())
    # the same as training on the data without the poisoned batch
    keep = torch.cat([torch.arange(40), torch.arange(48, 64)])
    clean = _VAELike()
    Trainer(max_epochs=2, batch_size=8, shuffle=False, progress=False).fit(
        clean, (x[keep], y[keep])
    )
    for a, b in zip(skipping.parameters(), clean.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nan_skip_inside_an_accumulation_window_steps_with_the_rest_of_the_window():
    x, y = _poisoned(bad_rows=range(24, 32))  # micro-batch 3 closes the first window of 4
    skipping = _VAELike()
    Trainer(
        max_epochs=1,
        batch_size=8,
        accumulate_grad_batches=4,
        shuffle=False,
        nan_policy="skip",
        progress=False,
    ).fit(skipping, (x, y))
    # window 1 = micro-batches 0-2 (each scaled by 1/4), window 2 = micro-batches 4-7
    reference = _VAELike()
    opt = torch.optim.SGD(reference.parameters(), lr=reference.lr)
    for window in ([0, 1, 2], [4, 5, 6, 7]):
        for b in window:
            (
                reference.training_step((x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8]))["loss"] / 4
            ).backward()
        opt.step()
        opt.zero_grad()
    for a, b in zip(skipping.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class _ManualNaN(nn.Module):
    """Manual optimisation whose second optimize call gets a NaN loss on the poisoned batch."""

    manual_optimization = True

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def training_step(self, batch, optimize):
        optimize((self.a - 1.0) ** 2, index=0)
        poisoned = torch.where(batch == 99.0, torch.nan, batch)  # data must be finite: NaN inside
        optimize((self.a * poisoned.mean()) ** 2, index=0)
        return {"a": self.a.detach()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_nan_in_a_manual_optimize_call_is_named():
    data = torch.ones(12, 1)
    data[9] = 99.0  # batch 2 of 3 (batch size 4) turns NaN inside training_step
    with pytest.raises(
        NonFiniteLossError, match=r"step 3 \(epoch 0, batch 2\).*optimize\(index=0\) call 1"
    ):
        Trainer(max_epochs=1, batch_size=4, shuffle=False, progress=False).fit(_ManualNaN(), data)
    model = _ManualNaN()
    trainer = Trainer(max_epochs=2, batch_size=4, shuffle=False, nan_policy="skip", progress=False)
    trainer.fit(model, data)
    assert trainer.history[-1]["skipped"] == 2.0 and torch.isfinite(model.a)
