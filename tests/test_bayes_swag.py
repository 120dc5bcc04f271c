"""SWAG (Maddox et al. 2019): the moments and deviations against numpy on a known sequence of
iterates, the sampling covariance, the Trainer-driven collection and its checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ebm.bayes import SWAG, Supervised, SWAGCallback
from ebm.train import Callback, Trainer


def _net() -> nn.Module:
    """The same small net every time, initialised from its own generator (13 parameters)."""
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    theta = torch.randn(13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    vector_to_parameters(theta * 0.5, net.parameters())
    return net


def _feed(thetas: np.ndarray, max_rank: int) -> tuple[nn.Module, SWAGCallback]:
    net, cb = _net(), SWAGCallback(max_rank=max_rank)
    for epoch, theta in enumerate(thetas):
        vector_to_parameters(torch.from_numpy(theta), net.parameters())
        cb.on_epoch_end(None, net, {"epoch": float(epoch)})
    return net, cb


def _numpy_swag(thetas: np.ndarray, max_rank: int):
    mean = thetas.mean(0)
    var = (thetas**2).mean(0) - mean**2
    running = np.cumsum(thetas, 0) / np.arange(1, len(thetas) + 1)[:, None]
    deviations = (thetas - running)[-max_rank:]
    k = len(deviations)
    return mean, var, deviations, 0.5 * (np.diag(var) + deviations.T @ deviations / (k - 1))


@pytest.mark.parametrize("n_snapshots", [3, 9])  # fewer and more snapshots than the rank
def test_moments_and_deviations_match_numpy(n_snapshots):
    rng = np.random.default_rng(0)
    p = sum(q.numel() for q in _net().parameters())  # 13
    thetas = rng.normal(size=(n_snapshots, p)) * rng.uniform(0.1, 2.0, size=p) + 3.0
    net, cb = _feed(thetas, max_rank=5)
    swag = SWAG(net, cb)
    mean, var, deviations, cov = _numpy_swag(thetas, max_rank=5)
    assert cb.n_collected == swag.n_collected == n_snapshots
    np.testing.assert_allclose(swag.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(swag.var.numpy(), var, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(swag.deviations.numpy(), deviations, rtol=1e-9, atol=1e-12)
    assert swag.rank == min(n_snapshots, 5)
    np.testing.assert_allclose(swag.covariance().numpy(), cov, rtol=1e-9, atol=1e-12)
    # the state_dict is the same SWAG
    again = SWAG(net, cb.state_dict())
    assert torch.equal(again.mean, swag.mean) and torch.equal(again.deviations, swag.deviations)


def test_schedule_collects_the_stated_epochs():
    rng = np.random.default_rng(1)
    net, cb = _net(), SWAGCallback(start_epoch=2, collect_every=3, max_rank=2)
    thetas = rng.normal(size=(11, 13))
    for epoch, theta in enumerate(thetas):
        vector_to_parameters(torch.from_numpy(theta), net.parameters())
        cb.on_epoch_end(None, net, {"epoch": float(epoch)})
    assert cb.n_collected == 3  # epochs 2, 5, 8
    np.testing.assert_allclose(cb.mean.numpy(), thetas[[2, 5, 8]].mean(0), rtol=1e-12)


def test_sample_covariance_is_half_diag_plus_low_rank():
    rng = np.random.default_rng(2)
    thetas = rng.normal(size=(6, 13)) * 0.5
    net, cb = _feed(thetas, max_rank=4)
    swag = SWAG(net, cb)
    gen = torch.Generator().manual_seed(0)
    n = 40_000
    draws = torch.stack([swag.sample(generator=gen) for _ in range(n)]).numpy()
    cov = swag.covariance().numpy()
    sd = np.sqrt(np.diag(cov))
    # the standard error of a sample covariance entry: sqrt((Σii Σjj + Σij²) / n)
    se = np.sqrt((np.outer(sd, sd) ** 2 + cov**2) / n)
    assert np.all(np.abs(np.cov(draws.T, bias=True) - cov) < 5 * se + 1e-12)
    assert np.all(np.abs(draws.mean(0) - swag.mean.numpy()) < 5 * sd / np.sqrt(n))
    # the same generator state gives the same draw
    a = swag.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, swag.sample(torch.Generator().manual_seed(3)))


class _Record(Callback):
    def __init__(self):
        self.params = {}

    def on_epoch_end(self, trainer, model, metrics):
        self.params[int(metrics["epoch"])] = parameters_to_vector(model.parameters()).clone()


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 2, generator=g, dtype=torch.float64) * 4 - 2
    return x, x.sum(1, keepdim=True).sin()


def _trainer(max_epochs, callbacks, **kw):
    return Trainer(
        max_epochs=max_epochs,
        batch_size=8,
        device="cpu",
        seed=0,
        progress=False,
        log_every_n_steps=None,
        tensorboard=False,
        callbacks=callbacks,
        **kw,
    )


def test_trainer_fit_collects_the_stated_snapshots():
    net, record = _net(), _Record()
    swag_cb = SWAGCallback(start_epoch=2, collect_every=2, max_rank=3)
    _trainer(7, [swag_cb, record]).fit(Supervised(net, lr=0.05), _data())
    assert swag_cb.n_collected == 3  # epochs 2, 4, 6
    expected = torch.stack([record.params[e] for e in (2, 4, 6)])
    torch.testing.assert_close(swag_cb.mean, expected.mean(0), rtol=1e-12, atol=1e-14)
    swag = SWAG(net, swag_cb)  # the Supervised wrapper's parameters are the net's
    pred = swag.predict(_data()[0][:5], n_samples=7, generator=torch.Generator().manual_seed(0))
    assert pred.samples.shape == (7, 5, 1) and pred.mean.dtype == torch.float64
    # the model is left as trained
    torch.testing.assert_close(parameters_to_vector(net.parameters()), record.params[6])


def test_resumed_fit_continues_the_collection(tmp_path):
    reference, ref_cb = _net(), SWAGCallback(start_epoch=1, max_rank=3)
    _trainer(6, [ref_cb]).fit(Supervised(reference, lr=0.05), _data())

    net, cb = _net(), SWAGCallback(start_epoch=1, max_rank=3)
    _trainer(3, [cb], ckpt_dir=tmp_path).fit(Supervised(net, lr=0.05), _data())
    assert cb.n_collected == 2
    fresh_net, fresh_cb = _net(), SWAGCallback(start_epoch=1, max_rank=3)
    _trainer(6, [fresh_cb], ckpt_dir=tmp_path).fit(
        Supervised(fresh_net, lr=0.05), _data(), resume=True
    )
    assert fresh_cb.n_collected == ref_cb.n_collected == 5
    torch.testing.assert_close(fresh_cb.mean, ref_cb.mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fresh_cb.sq_mean, ref_cb.sq_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fresh_cb.deviations, ref_cb.deviations, rtol=1e-10, atol=1e-12)


def test_predict_adds_noise_and_reads_array_likes():
    rng = np.random.default_rng(3)
    net, cb = _feed(rng.normal(size=(4, 13)) * 0.1, max_rank=3)
    x = np.linspace(-1, 1, 10).reshape(5, 2)
    plain = SWAG(net, cb).predict(x, n_samples=6, generator=torch.Generator().manual_seed(1))
    noisy = SWAG(net, cb, noise_var=0.25).predict(
        torch.from_numpy(x), n_samples=6, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(noisy.var, plain.var + 0.25)
    torch.testing.assert_close(noisy.mean, plain.mean)
    # each sample is the model's output at one sampled weight vector
    gen = torch.Generator().manual_seed(1)
    theta = SWAG(net, cb).sample(gen)
    clone = _net()
    vector_to_parameters(theta, clone.parameters())
    torch.testing.assert_close(plain.samples[0], clone(torch.from_numpy(x)).detach())


def test_refuses_too_few_snapshots_and_other_models():
    net, cb = _feed(np.zeros((1, 13)), max_rank=3)
    with pytest.raises(ValueError, match="swag must hold at least 2 snapshots"):
        SWAG(net, cb)
    net, cb = _feed(np.zeros((2, 13)), max_rank=3)
    with pytest.raises(ValueError, match="model's parameter shapes"):
        SWAG(nn.Linear(2, 1), cb)
    with pytest.raises(ValueError, match="model's parameter shapes"):
        cb.collect(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="swag must be"):
        SWAG(net, {"mean": torch.zeros(13)})
