"""The Trainer contract: data forms, batching, step returns, optimisers, manual optimisation."""

from __future__ import annotations

import pytest
import torch
from _train_models import Regression, params_of, regression_data
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ebm.train import Trainer, resolve_device


def _gd_reference(x, y, lr, steps, batch_size=None):
    """Hand-written SGD on the same model, natural order, for an exact comparison."""
    model = Regression(x.shape[1], lr)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(x)
    bs = n if batch_size is None else batch_size
    for _ in range(steps):
        for lo in range(0, n, bs):
            loss = nn.functional.mse_loss(model(x[lo : lo + bs]), y[lo : lo + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return params_of(model)


def test_full_batch_matches_hand_written_gradient_descent():
    x, y = regression_data(64)
    model = Regression(3, lr=0.05)
    Trainer(max_epochs=7, batch_size=None, device="cpu", progress=False).fit(model, (x, y))
    expected = _gd_reference(x, y, 0.05, 7)
    for k, v in params_of(model).items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0)


def test_minibatches_without_shuffle_match_hand_written_loop():
    x, y = regression_data(70)  # 70 = 4 batches of 16 + one of 6
    model = Regression(3, lr=0.05)
    trainer = Trainer(max_epochs=3, batch_size=16, device="cpu", shuffle=False, progress=False)
    trainer.fit(model, (x, y))
    expected = _gd_reference(x, y, 0.05, 3, batch_size=16)
    for k, v in params_of(model).items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0)
    assert trainer.step == 3 * 5


def test_converges_to_least_squares_solution():
    x, y = regression_data(256)
    model = Regression(3, lr=0.1)
    Trainer(max_epochs=40, batch_size=32, seed=0, progress=False).fit(model, (x, y))
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(design, y.unsqueeze(-1)).solution.squeeze(-1)
    got = torch.cat([model.lin.weight.squeeze(0), model.lin.bias])
    # SGD with a constant step hovers around the optimum: within the noise level
    torch.testing.assert_close(got, solution, atol=2e-2, rtol=0)


class _Recorder(nn.Module):
    """Records which samples each step saw; data are the sample indices themselves."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []

    def training_step(self, batch):
        xb = batch[0] if isinstance(batch, list) else batch
        self.seen.append(xb.reshape(-1).long().tolist())
        return (self.w - xb.float().mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _orders(data, seed, epochs=2, batch_size=8):
    model = _Recorder()
    Trainer(max_epochs=epochs, batch_size=batch_size, seed=seed, progress=False).fit(model, data)
    return model.seen


def test_every_epoch_visits_each_sample_once_in_a_seeded_shuffled_order():
    idx = torch.arange(30)
    seen = _orders(idx, seed=3)
    assert [len(b) for b in seen] == [8, 8, 8, 6] * 2
    epoch1, epoch2 = sum(seen[:4], []), sum(seen[4:], [])
    assert sorted(epoch1) == list(range(30)) and sorted(epoch2) == list(range(30))
    assert epoch1 != list(range(30)) and epoch1 != epoch2  # shuffled, freshly each epoch
    assert _orders(idx, seed=3) == seen  # same seed, same order
    assert _orders(idx, seed=4) != seen


def test_data_order_ignores_the_global_rng():
    idx = torch.arange(30)
    torch.manual_seed(123)
    a = _orders(idx, seed=5)
    torch.randn(17)  # move the global RNG on
    b = _orders(idx, seed=5)
    assert a == b


def test_tensor_tuple_dataset_and_dataloader_give_the_same_batches():
    idx = torch.arange(20)
    as_tensor = _orders(idx, seed=1)
    as_tuple = _orders((idx, idx * 2), seed=1)
    as_dataset = _orders(TensorDataset(idx), seed=1)
    assert as_tuple == as_tensor and as_dataset == as_tensor
    loader = DataLoader(TensorDataset(idx), batch_size=5, shuffle=False)
    as_loader = _orders(loader, seed=1, epochs=1)
    assert as_loader == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
    ]


def test_batch_forms_reach_training_step():
    kinds = []

    class Probe(_Recorder):
        def training_step(self, batch):
            kinds.append(type(batch).__name__)
            return self.w**2

    x = torch.zeros(4, 2)
    for data in (x, (x, x), [x, x], TensorDataset(x, x)):
        Trainer(max_epochs=1, batch_size=None, progress=False).fit(Probe(), data)
    assert kinds == ["Tensor", "list", "list", "list"]


class _Dicts(Regression):
    def training_step(self, batch):
        x, y = batch
        mse = nn.functional.mse_loss(self(x), y)
        return {"loss": mse, "mae": (self(x) - y).abs().mean(), "constant": 2.0}

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": sched}


def test_dict_returns_are_logged_and_schedulers_step_per_epoch():
    x, y = regression_data(64)
    trainer = Trainer(max_epochs=5, batch_size=16, seed=0, progress=False, log_every_n_steps=2)
    trainer.fit(_Dicts(), (x, y), val_data=(x, y))
    epochs = [h for h in trainer.history if "batch" not in h]
    steps = [h for h in trainer.history if "batch" in h]
    assert [h["epoch"] for h in epochs] == [0, 1, 2, 3, 4]
    assert [h["step"] for h in steps] == list(range(2, 21, 2))
    assert all(
        isinstance(v, float) for h in epochs for k, v in h.items() if k != "epoch" and k != "step"
    )
    # StepLR(step_size=2, gamma=0.5), stepped at each epoch end; the row shows the lr used
    assert [h["lr"] for h in epochs] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert all(h["constant"] == 2.0 for h in epochs)
    assert all(h["mae"] > 0 for h in epochs)
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    # the epoch mean is the mean of that epoch's step losses
    fine = Trainer(max_epochs=2, batch_size=16, seed=0, progress=False, log_every_n_steps=1)
    fine.fit(_Dicts(), (x, y))
    for e in range(2):
        per_step = [h["loss"] for h in fine.history if "batch" in h and h["epoch"] == e]
        epoch_row = next(h for h in fine.history if "batch" not in h and h["epoch"] == e)
        assert len(per_step) == 4
        assert epoch_row["loss"] == pytest.approx(sum(per_step) / 4, rel=1e-12)


def test_step_interval_scheduler():
    class PerStep(Regression):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (k + 1))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    x, y = regression_data(32)
    trainer = Trainer(max_epochs=2, batch_size=8, progress=False, log_every_n_steps=1)
    trainer.fit(PerStep(), (x, y))
    steps = [h for h in trainer.history if "batch" in h]
    # row k (step k) is logged after the scheduler stepped k times
    assert [h["lr"] for h in steps] == pytest.approx([1.0 / (k + 1) for k in range(1, 9)])
    # with accumulation a "step" interval means an optimiser update, not a micro-batch
    trainer = Trainer(
        max_epochs=2, batch_size=8, accumulate_grad_batches=2, progress=False, log_every_n_steps=2
    )
    trainer.fit(PerStep(), (x, y))
    steps = [h for h in trainer.history if "batch" in h]
    assert [h["lr"] for h in steps] == pytest.approx([1.0 / (k + 1) for k in range(1, 5)])
    assert trainer.updates == 4 and trainer.step == 8


class _TwoOptimisers(nn.Module):
    """Manual optimisation: two parameters, two optimisers, several updates per batch."""

    manual_optimization = True

    def __init__(self, n_critic: int = 3):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(4.0))
        self.b = nn.Parameter(torch.tensor(-4.0))
        self.n_critic = n_critic

    def training_step(self, batch, optimize):
        for _ in range(self.n_critic):
            optimize((self.a - batch.mean()) ** 2, index=0)
        loss_b = (self.b + self.a.detach()) ** 2
        optimize(loss_b, index=1)
        return {"loss_b": loss_b.detach()}

    def configure_optimizers(self):
        return [torch.optim.SGD([self.a], lr=0.25), torch.optim.SGD([self.b], lr=0.5)]


def test_manual_optimisation_steps_each_optimiser_as_asked():
    model = _TwoOptimisers(n_critic=3)
    data = torch.full((4, 1), 2.0)
    trainer = Trainer(max_epochs=1, batch_size=None, progress=False)
    trainer.fit(model, data)
    # a: three SGD steps on (a - 2)^2 with lr 0.25 halve the gap each time: 2 + 2/8
    assert model.a.item() == pytest.approx(2.25)
    # b: one step on (b + a)^2 with a = 2.25, lr 0.5: b <- b - 0.5 * 2 (b + a) = -a
    assert model.b.item() == pytest.approx(-2.25)
    assert trainer.history[-1]["loss_b"] == pytest.approx((-4.0 + 2.25) ** 2)


def test_manual_optimisation_under_gradient_clipping():
    model = _TwoOptimisers(n_critic=1)
    Trainer(max_epochs=1, batch_size=None, grad_clip=0.5, progress=False).fit(
        model, torch.full((4, 1), 2.0)
    )
    # gradient 2 (a - 2) = 4 is clipped to norm 0.5: a moves by lr * 0.5
    assert model.a.item() == pytest.approx(4.0 - 0.25 * 0.5)


def test_device_and_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    auto = resolve_device("auto")
    if expected:
        assert auto.type == expected
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        assert auto == torch.device("cpu")
    trainer = Trainer(max_epochs=1, device="cpu", progress=False)
    trainer.fit(Regression(), regression_data(8))
    assert trainer.device == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_gradient_accumulation_equals_the_big_batch():
    x, y = regression_data(64)
    big = Regression(3, lr=0.1)
    Trainer(max_epochs=2, batch_size=32, shuffle=False, progress=False).fit(big, (x, y))
    small = Regression(3, lr=0.1)
    Trainer(
        max_epochs=2, batch_size=8, accumulate_grad_batches=4, shuffle=False, progress=False
    ).fit(small, (x, y))
    for k, v in params_of(small).items():
        torch.testing.assert_close(v, params_of(big)[k], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_the_update():
    x, y = regression_data(32)
    y = y + 100.0  # a huge gradient
    model = Regression(3, lr=1.0)
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    Trainer(max_epochs=1, batch_size=None, grad_clip=0.1, progress=False).fit(model, (x, y))
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.linalg.vector_norm(after - before).item() == pytest.approx(0.1, rel=1e-4)


def test_max_steps_stops_mid_epoch():
    trainer = Trainer(max_epochs=10, max_steps=5, batch_size=8, progress=False)
    trainer.fit(Regression(), regression_data(64))
    assert trainer.step == 5


def test_auto_device_prefers_cuda_then_mps(monkeypatch):
    mps = getattr(torch.backends, "mps", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: True)
        assert resolve_device("auto") == torch.device("mps")
        monkeypatch.setattr(mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_manual_optimisation_refuses_gradient_accumulation():
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        Trainer(max_epochs=1, accumulate_grad_batches=2, progress=False).fit(
            _TwoOptimisers(), torch.zeros(4, 1)
        )


def test_sharding_gives_each_rank_every_world_size_th_sample_of_the_global_order():
    from ebm.train.data import Batches

    data = torch.arange(11)  # padded to 12 by wrapping around: ranks see 6 samples each
    shards = []
    for rank in range(2):
        batches = Batches(data, 3, False, torch.device("cpu"), rank=rank, world_size=2)
        shards.append([b.tolist() for b in batches.epoch(batches.order(None))])
    assert shards == [[[0, 2, 4], [6, 8, 10]], [[1, 3, 5], [7, 9, 0]]]
    loader = DataLoader(TensorDataset(data), batch_size=2)
    with pytest.warns(UserWarning, match="without a DistributedSampler"):
        Batches(loader, None, True, torch.device("cpu"), rank=0, world_size=2)


def test_accumulation_window_left_open_by_a_length_less_loader_is_stepped():
    from torch.utils.data import IterableDataset

    x, y = regression_data(48)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(zip(x, y))

    model = Regression(3, lr=0.1)
    loader = DataLoader(Stream(), batch_size=8)  # 6 batches, length unknown up front
    Trainer(max_epochs=1, accumulate_grad_batches=4, progress=False).fit(model, loader)
    reference = Regression(3, lr=0.1)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for window in ([0, 1, 2, 3], [4, 5]):  # the second window closes at the end of the data
        for b in window:
            (reference.training_step((x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8])) / 4).backward()
        opt.step()
        opt.zero_grad()
    for k, v in params_of(model).items():
        torch.testing.assert_close(v, params_of(reference)[k], rtol=1e-6, atol=1e-7)


def test_logged_metrics_are_the_values_at_their_step_even_for_parameter_views():
    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def training_step(self, batch):
            # w.detach() shares storage with w, which the optimiser changes in place
            return {"loss": (self.w - 1.0) ** 2 + 0 * batch.sum(), "w": self.w.detach()}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.25)

    trainer = Trainer(
        max_epochs=1, batch_size=1, shuffle=False, log_every_n_steps=2, progress=False
    )
    trainer.fit(Scalar(), torch.zeros(4, 1))
    # w_{k+1} = w_k + (1 - w_k) / 2 from 0: the steps see 0, 0.5, 0.75, 0.875
    assert [h["w"] for h in trainer.history if "batch" in h] == [0.5, 0.875]
    assert trainer.history[-1]["w"] == pytest.approx((0 + 0.5 + 0.75 + 0.875) / 4)


class _NoisyRegression(Regression):
    """Draws from the global RNG inside training_step, like dropout or a reparameterisation."""

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x + 0.1 * torch.randn_like(x)), y)


def test_seed_makes_global_rng_draws_reproducible_and_gives_the_callers_state_back():
    x, y = regression_data()
    runs = []
    for _ in range(2):
        model = _NoisyRegression()  # nn.Linear's init draws from the global RNG: before `before`
        before = torch.get_rng_state()
        Trainer(max_epochs=2, batch_size=32, seed=5, progress=False).fit(model, (x, y))
        assert torch.equal(before, torch.get_rng_state())
        runs.append(model.lin.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])
