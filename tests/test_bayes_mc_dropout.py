"""MC dropout: what is sampled, what is restored, the distribution of the samples, tau, and the
notes' ReLU/tanh behaviour far from the data (ch. 42)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebm.bayes import (
    MCDropout,
    Prediction,
    Supervised,
    dropout_modules,
    notes_regression_net,
    tau_from,
)
from ebm.data import x_sin_x


def notes_net(activation=nn.Tanh, seed=0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return notes_regression_net(activation)


def test_samples_have_shape_t_b_and_prediction_fields():
    net = notes_net()
    x = torch.linspace(-3, 3, 7).view(-1, 1)
    pred = MCDropout(net, n_samples=11, seed=0).predict(x)
    assert isinstance(pred, Prediction)
    assert pred.samples.shape == (11, 7, 1)
    torch.testing.assert_close(pred.mean, pred.samples.mean(0))
    torch.testing.assert_close(pred.var, pred.samples.var(0, correction=0))


def test_same_seed_same_samples_and_chunking_keeps_shape():
    net = notes_net()
    x = torch.randn(13, 1)
    a = MCDropout(net, 9, seed=3).sample(x)
    b = MCDropout(net, 9, seed=3).sample(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = MCDropout(net, 9, seed=4, chunk_size=5).sample(x)  # chunks split points and samples
    assert c.shape == a.shape and not torch.equal(a, c)


def test_masks_keep_rate_and_inverted_scaling():
    drop = nn.Sequential(nn.Dropout(0.3))
    out = MCDropout(drop, n_samples=200, seed=0).sample(torch.ones(100, 50))  # 10⁶ units
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 5 * (0.21 / 1e6) ** 0.5
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.7), rtol=1e-4, atol=0)
    assert abs(out.mean().item() - 1.0) < 0.01  # unbiased


def test_channelwise_dropout_drops_whole_channels():
    net = nn.Sequential(nn.Dropout2d(0.5))
    out = MCDropout(net, n_samples=20, seed=0).sample(torch.ones(4, 6, 3, 3))  # (T, B, C, H, W)
    per_channel = out.flatten(-2)
    assert bool(((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1)).all())
    assert 0.3 < (per_channel[..., 0] == 0).float().mean().item() < 0.7


def test_matches_a_loop_of_train_mode_passes_in_distribution():
    net = notes_net(nn.ReLU)
    x = torch.linspace(-8, 8, 40).view(-1, 1)
    t = 3000
    mc = MCDropout(net, n_samples=t, seed=1).predict(x)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(2)
        net.train()
        loop = torch.stack([net(x) for _ in range(t)])
        net.eval()
    z = (mc.mean - loop.mean(0)) / ((mc.var + loop.var(0)) / t).sqrt()
    assert z.abs().max() < 4.5
    ratio = mc.var / loop.var(0)
    assert ((ratio - 1).abs() < 0.2).all(), ratio.flatten()


def test_only_dropout_is_sampled_batchnorm_stays_in_eval_and_state_is_restored():
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.2), nn.Linear(8, 2))
    with torch.no_grad():
        net[1].running_mean.fill_(0.5)
        net[1].running_var.fill_(2.0)
    net.train()
    net[3].eval()  # a mixed state must come back exactly
    before = {name: m.training for name, m in net.named_modules()}
    stats = net[1].running_mean.clone(), net[1].running_var.clone()
    x = torch.randn(5, 3)
    pred = MCDropout(net, n_samples=20000, seed=0).predict(x)
    assert {name: m.training for name, m in net.named_modules()} == before
    torch.testing.assert_close(net[1].running_mean, stats[0], rtol=0, atol=0)
    torch.testing.assert_close(net[1].running_var, stats[1], rtol=0, atol=0)
    assert net[1].num_batches_tracked.item() == 0
    assert all(not m._forward_hooks for m in net.modules())
    net.eval()
    with torch.no_grad():
        expected = net(x)  # linear after dropout: the MC mean equals the eval output
    se = (pred.var / 20000).sqrt()
    assert ((pred.mean - expected).abs() < 5 * se + 1e-6).all()


def test_state_and_hooks_restored_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2), Boom())
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        MCDropout(net, 3).predict(torch.randn(4, 2))
    assert all(m.training for m in net.modules())
    assert not net[0]._forward_hooks


def test_eval_mode_has_zero_spread_and_mc_has_some():
    net = notes_net().eval()
    x = torch.linspace(-5, 5, 30).view(-1, 1)
    with torch.no_grad():
        passes = torch.stack([net(x) for _ in range(20)])
    assert passes.std(0).max().item() == 0.0
    assert MCDropout(net, 20, seed=0).predict(x).std.min().item() > 0.0


def test_tau_adds_inverse_precision():
    net = notes_net()
    x = torch.randn(8, 1)
    plain = MCDropout(net, 10, seed=5).predict(x)
    with_tau = MCDropout(net, 10, tau=4.0, seed=5).predict(x)
    torch.testing.assert_close(with_tau.var - plain.var, torch.full_like(plain.var, 0.25))
    torch.testing.assert_close(with_tau.mean, plain.mean)


def test_tau_from_formula_and_keep_probability():
    # tau = l^2 p / (2 N lambda), p the KEEP probability, lambda = wd/4 for nn.MSELoss
    assert tau_from(2.0, 0.95, 20, 1e-5) == pytest.approx(4 * 0.95 / (2 * 20 * 1e-5 / 4))
    assert tau_from(2.0, 0.95, 20, 1e-5, loss="nll") == pytest.approx(
        4 * 0.95 / (2 * 20 * 1e-5 / 2)
    )


def test_weight_decay_convention_matches_pytorch_sgd():
    """SGD(weight_decay=wd) on nn.MSELoss follows the gradient of 2·[(1/N)Σ½(y−ŷ)² + λ‖w‖²]
    with λ = wd/4: the λ that tau_from assumes (tau ∝ 1/λ)."""
    wd, n = 0.3, 16
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=gen), torch.randn(n, 1, generator=gen)
    net = nn.Linear(3, 1)
    w0 = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=wd)
    nn.functional.mse_loss(net(x), y).backward()
    opt.step()
    # Gal's objective with the lambda implied by tau_from (ratio of taus for mse vs nll = 2)
    lam = 0.95 / (2 * n * tau_from(1.0, 0.95, n, wd))
    assert lam == pytest.approx(wd / 4)
    params = [p.clone().requires_grad_() for p in w0]
    pred = x @ params[0].T + params[1]
    gal = 0.5 * ((y - pred) ** 2).sum(1).mean() + lam * sum((p**2).sum() for p in params)
    grads = torch.autograd.grad(2 * gal, params)
    for p_new, p_old, g in zip(net.parameters(), w0, grads):
        torch.testing.assert_close(p_new.detach(), p_old - 0.1 * g)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"length_scale": -1.0, "keep_prob": 0.9, "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 0.0, "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 0, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 10, "weight_decay": 0.0},
        {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 10, "weight_decay": 1e-4, "loss": "l1"},
        {"length_scale": float("nan"), "keep_prob": 0.9, "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": float("nan"), "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 1.5, "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": True, "n_data": 10, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 10.0, "weight_decay": 1e-4},
        {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 10, "weight_decay": float("inf")},
    ],
)
def test_tau_from_rejects_bad_input(kwargs):
    good = {"length_scale": 1.0, "keep_prob": 0.9, "n_data": 10, "weight_decay": 1e-4}
    (bad,) = [
        k
        for k in ("loss", *good)
        if k in kwargs and (type(kwargs[k]) is not type(good.get(k)) or kwargs[k] != good[k])
    ]
    with pytest.raises(ValueError, match=rf"\b{bad}\b"):
        tau_from(**kwargs)


def test_rejects_nets_without_sampled_dropout_and_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        MCDropout(nn.Linear(1, 1))
    with pytest.raises(ValueError, match="dropout"):
        MCDropout(nn.Sequential(nn.Dropout(0.0), nn.Linear(1, 1)))
    with pytest.raises(ValueError, match="n_samples"):
        MCDropout(notes_net(), n_samples=0)
    with pytest.raises(ValueError, match="tau"):
        MCDropout(notes_net(), tau=-1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        MCDropout(notes_net(), chunk_size=0)
    with pytest.raises(ValueError, match="net"):
        MCDropout("not a net")
    for not_a_net in (3, "net", None):  # used to be an AttributeError ('int' has no .modules)
        with pytest.raises(ValueError, match=r"^net must be a torch.nn.Module"):
            dropout_modules(not_a_net)
    with pytest.raises(ValueError, match=r"\bx\b"):
        MCDropout(notes_net()).predict([[1.0], [float("nan")]])


def test_float64_integer_and_list_inputs_are_cast_to_the_nets_dtype():
    # float64 data into the float32 net used to fail inside the first Linear
    net, x = notes_net(), torch.tensor([[-2.0], [0.0], [3.0]])
    ref = MCDropout(net, 7, seed=1).sample(x)
    for same in (x.double(), x.long(), x.tolist(), x.numpy()):
        got = MCDropout(net, 7, seed=1).sample(same)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    double_net = notes_net().double()
    got = MCDropout(double_net, 7, seed=1).predict(x)  # float32 data into a float64 net
    assert got.mean.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_samples": True}, "n_samples"),
        ({"n_samples": 2.0}, "n_samples"),
        ({"chunk_size": -5}, "chunk_size"),
        ({"tau": float("nan")}, "tau"),
        ({"tau": float("inf")}, "tau"),
        ({"tau": "1"}, "tau"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_hyper_parameters_raise_at_construction(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        MCDropout(notes_net(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"p": 1.0}, "p"),
        ({"p": -0.1}, "p"),
        ({"p": float("nan")}, "p"),
        ({"p": True}, "p"),
        ({"activation": "tanh"}, "activation"),
        ({"activation": nn.Tanh()}, "activation"),
    ],
)
def test_notes_regression_net_validates(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        notes_regression_net(**kwargs)


# the notes' experiment (ch. 42): 1000 full-batch SGD epochs on 20 points of x·sin(x) --------


@pytest.fixture(scope="module")
def fitted_notes_nets():
    from ebm.train import Trainer

    x, y = x_sin_x(generator=torch.Generator().manual_seed(0))
    nets = {}
    for name, activation in (("tanh", nn.Tanh), ("relu", nn.ReLU)):
        net = notes_net(activation, seed=0)
        model = Supervised(net, loss="mse", optimizer="sgd", lr=0.01, weight_decay=1e-5)
        trainer = Trainer(max_epochs=1000, batch_size=None, device="cpu", seed=0, progress=False)
        with torch.random.fork_rng(devices=[]):
            trainer.fit(model, (x, y))
        nets[name] = net
    return nets


def _std_at(net, points):
    x = torch.tensor(points).view(-1, 1)
    return MCDropout(net, n_samples=2000, seed=0).predict(x).std.squeeze(1)


def test_relu_uncertainty_grows_far_from_the_data(fitted_notes_nets):
    net = fitted_notes_nets["relu"]
    inside = _std_at(net, torch.linspace(-5, 5, 101).tolist()).mean()
    far = _std_at(net, [-15.0, -13.5, -12.0, 12.0, 13.5, 15.0])
    assert (far >= 5 * inside).all(), (far, inside)
    assert far[0] > far[2] and far[5] > far[3]  # still growing outward at |x| = 15
    s30, s60 = _std_at(net, [-30.0, 30.0]), _std_at(net, [-60.0, 60.0])
    assert (s60 / s30 > 1.6).all()  # ~linear growth of a piecewise-linear net


def test_tanh_uncertainty_levels_off(fitted_notes_nets):
    net = fitted_notes_nets["tanh"]
    s30, s60 = _std_at(net, [-30.0, 30.0]), _std_at(net, [-60.0, 60.0])
    assert (s60 <= 1.1 * s30).all(), (s30, s60)  # saturated units: no growth from 30 to 60
    far = _std_at(net, torch.linspace(-100, 100, 201).tolist())
    relu_far = _std_at(fitted_notes_nets["relu"], [-100.0, 100.0])
    assert far.max() < 0.1 * relu_far.min()  # bounded, unlike ReLU's


@pytest.mark.parametrize("p", [0.3, 0.001], ids=["16-bit masks", "float masks"])
def test_a_generator_passed_to_a_call_draws_its_masks(p):
    net = nn.Sequential(nn.Dropout(p))
    x = torch.ones(100, 100)
    mc = MCDropout(net, n_samples=4, seed=3)
    state = torch.get_rng_state()
    a = mc.predict(x, generator=torch.Generator().manual_seed(5)).samples
    b = MCDropout(net, 4, seed=8).sample(x, generator=torch.Generator().manual_seed(5))
    c = mc.sample(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the call's generator, not the seed
    # the private stream is not advanced by calls that bring their own generator
    assert torch.equal(mc.sample(x), MCDropout(net, 4, seed=3).sample(x))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    with pytest.raises(ValueError, match="generator"):
        mc.sample(x, generator=5)


def test_notes_regression_net_seed_fixes_the_weights_and_spares_the_global_rng():
    state = torch.get_rng_state()
    a, b = notes_regression_net(seed=1), notes_regression_net(seed=1)
    c = notes_regression_net(seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, c[1].weight)
    # the seeded net is the one the global RNG would give after manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        d = notes_regression_net()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), d.parameters()))
    with pytest.raises(ValueError, match="seed"):
        notes_regression_net(seed=-1)


def test_caffe_lenet_is_the_notes_network_and_its_seed_leaves_the_global_rng_alone():
    from ebm.bayes import caffe_lenet

    net = caffe_lenet(seed=0)
    sizes = [tuple(p.shape) for p in net.parameters()]
    assert sizes == [
        (20, 1, 5, 5),
        (20,),
        (50, 20, 5, 5),
        (50,),
        (500, 800),
        (500,),
        (10, 500),
        (10,),
    ]
    assert net[7].p == 0.5
    state = torch.get_rng_state()
    again = caffe_lenet(seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters()))
