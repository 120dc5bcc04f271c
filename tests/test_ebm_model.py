"""EBM trained by persistent CD through the Trainer: minima on the ring's 8 modes; the replay
buffer rides in state_dict (hence in checkpoints)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ebm.data import ring_of_gaussians
from ebm.data.toy2d import ring_centers
from ebm.energies import MLPEnergy
from ebm.models import EBM
from ebm.train import Trainer


def _train(steps=500, seed=0):
    data = ring_of_gaussians(2000, noise=0.1, generator=torch.Generator().manual_seed(seed))
    energy = MLPEnergy(2, hidden=(128, 128), activation=torch.nn.ReLU)
    model = EBM(
        energy,
        (2,),
        n_steps=20,
        step_size=0.01,
        noise_scale=0.01,
        init_scale=3.0,
        alpha=0.1,
        lr=1e-3,
        buffer_size=2000,
        seed=seed,
    )
    Trainer(
        max_epochs=None,
        max_steps=steps,
        batch_size=128,
        device="cpu",
        seed=seed,
        progress=False,
        log_every_n_steps=None,
    ).fit(model, data)
    return model


def test_persistent_cd_puts_the_energy_minima_on_the_eight_modes():
    model = _train()
    angles = torch.linspace(0, 2 * math.pi, 721)[:-1]
    with torch.no_grad():
        on_ring = model(2.0 * torch.stack([angles.cos(), angles.sin()], 1))
        e_modes = model(ring_centers())
        between = angles[::90] + math.pi / 8
        e_between = model(2.0 * torch.stack([between.cos(), between.sin()], 1))
        e_origin = model(torch.zeros(1, 2))
    # a local minimum of the energy along the ring within 10° of every mode (every 45°): in the
    # window mode ± 10° the lowest point is strictly inside, not on the window's edge
    windows = on_ring.roll(20).reshape(8, 90)[:, :41]  # mode k: 45k − 10° .. 45k + 10°
    inside = windows.argmin(dim=1)
    assert ((inside > 0) & (inside < 40)).all(), inside
    assert (e_modes < e_origin).all()
    # the valley between two modes is higher than at least one of them
    assert (e_between > torch.minimum(e_modes, e_modes.roll(-1))).all()


def test_replay_buffer_is_in_state_dict_and_round_trips():
    a = EBM(MLPEnergy(2, hidden=(8,)), (2,), buffer_size=50, seed=0)
    a.training_step(torch.randn(16, 2), lambda loss, index=0: loss.backward())
    state = a.state_dict()
    assert "buffer.samples" in state and state["buffer.samples"].shape == (50, 2)
    b = EBM(MLPEnergy(2, hidden=(8,)), (2,), buffer_size=50, seed=1)
    b.load_state_dict(state)
    assert torch.equal(a.buffer.samples, b.buffer.samples)


def test_trainer_checkpoint_saves_the_buffer(tmp_path):
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=64, seed=0)
    before = model.buffer.samples.clone()
    Trainer(
        max_epochs=1, batch_size=32, device="cpu", seed=0, progress=False, ckpt_dir=tmp_path
    ).fit(model, torch.randn(64, 2))
    assert not torch.equal(model.buffer.samples, before)  # chains were stored back
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    flat = {k: v for k, v in saved.items() if isinstance(v, dict)}
    found = [d["buffer.samples"] for d in flat.values() if "buffer.samples" in d]
    assert found and torch.equal(found[0], model.buffer.samples)


@pytest.mark.parametrize("chains", ["noise", "data"])
def test_other_chain_starts_train(chains):
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), chains=chains, n_steps=3, buffer_size=10)
    out = model.training_step(torch.randn(16, 2), lambda loss, index=0: loss.backward())
    assert set(out) == {"loss", "e_data", "e_model"} and torch.isfinite(out["loss"])
    assert model.sample(5, n_steps=3).shape == (5, 2)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="chains"):
        EBM(MLPEnergy(2), (2,), chains="contrastive")
    with pytest.raises(ValueError, match="energy"):
        EBM(lambda y: y.sum(1), (2,))
    with pytest.raises(ValueError, match="n_steps"):
        EBM(MLPEnergy(2), (2,), n_steps=0)


def test_lr_decay_follows_the_cosine_to_the_final_ratio():
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), lr=0.01, lr_decay_steps=8, lr_final_ratio=0.1)
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # lr_k = lr·(r + (1 − r)·(1 + cos(πk/8))/2) for k ≤ 8, then lr·r
    expected = [0.01 * (0.1 + 0.9 * (1 + math.cos(math.pi * min(k, 8) / 8)) / 2) for k in range(12)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[0] == pytest.approx(0.01) and seen[4] == pytest.approx(0.0055)
    assert seen[8:] == pytest.approx([0.001] * 4)


def test_lr_decay_runs_through_the_trainer():
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=64, lr=0.01, seed=0)
    assert isinstance(model.configure_optimizers(), torch.optim.Adam)  # no schedule by default
    model = EBM(
        MLPEnergy(2, hidden=(8,)),
        (2,),
        n_steps=2,
        buffer_size=64,
        lr=0.01,
        lr_decay_steps=4,
        lr_final_ratio=0.25,
        seed=0,
    )
    trainer = Trainer(
        max_epochs=None,
        max_steps=6,
        batch_size=16,
        device="cpu",
        seed=0,
        progress=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, torch.randn(64, 2))
    # the trainer logs the rate after each step's scheduler update: k = 1 .. 6
    lrs = [row["lr"] for row in trainer.history if "batch" in row]  # not the epoch summaries
    expected = [
        0.01 * (0.25 + 0.75 * (1 + math.cos(math.pi * min(k, 4) / 4)) / 2) for k in range(1, 7)
    ]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert lrs[-2:] == pytest.approx([0.0025, 0.0025])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr_decay_steps": 0}, "lr_decay_steps"),
        ({"lr_decay_steps": 2.5}, "lr_decay_steps"),
        ({"lr_decay_steps": True}, "lr_decay_steps"),
        ({"lr_final_ratio": -0.1}, "lr_final_ratio"),
        ({"lr_final_ratio": 1.5}, "lr_final_ratio"),
        ({"lr_final_ratio": float("nan")}, "lr_final_ratio"),
        ({"lr_final_ratio": "0.1"}, "lr_final_ratio"),
    ],
)
def test_bad_lr_schedules_are_rejected(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EBM(MLPEnergy(2, hidden=(8,)), (2,), **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"noise_scale": float("nan")}, "noise_scale"),
        ({"noise_scale": -0.1}, "noise_scale"),
        ({"step_size": float("inf")}, "step_size"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"buffer_size": 2.5}, "buffer_size"),
        ({"init_scale": 0}, "init_scale"),
        ({"init_noise": "laplace"}, "init_noise"),
        ({"reinit_prob": float("nan")}, "reinit_prob"),
        ({"data_shape": (0,)}, "data_shape"),
        ({"data_shape": 2}, "data_shape"),
        ({"betas": (1.5, 0.999)}, r"betas\[0\]"),
        ({"betas": "ab"}, "betas"),
        ({"alpha": float("inf")}, "alpha"),
        ({"alpha": "0.1"}, "alpha"),
        ({"clamp": (1.0, 0.0)}, "clamp"),
        ({"clamp": ("a", "b")}, "clamp"),
        ({"lr": float("nan")}, "lr"),
        ({"n_steps": 2.5}, "n_steps"),
    ],
)
def test_hyper_parameters_are_validated_by_the_users_name(kwargs, name):
    args = {"data_shape": (2,), **kwargs}
    with pytest.raises(ValueError, match=name):
        EBM(MLPEnergy(2, hidden=(8,)), **args)


def test_sample_arguments_are_validated():
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=10, seed=0)
    for n in (0, 2.5, True):
        with pytest.raises(ValueError, match="n must"):
            model.sample(n)
    with pytest.raises(ValueError, match="n must"):
        model.sample(11, from_buffer=True)
    for n_steps in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="n_steps"):
            model.sample(3, n_steps=n_steps)
    with pytest.raises(ValueError, match="from_buffer"):
        model.sample(3, from_buffer=1)
    assert model.sample(3, n_steps=0).shape == (3, 2)


def test_float64_and_numpy_data_train_a_float32_energy_in_float32():
    import numpy as np

    from ebm.train import Trainer

    initial = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=16, seed=0)

    def fit(data):
        model = copy.deepcopy(initial)  # one initialisation for every run
        Trainer(max_steps=3, batch_size=8, seed=0, progress=False, log_every_n_steps=None).fit(
            model, data
        )
        return model

    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    reference = fit(x)
    for data in (x.double(), np.asarray(x.double())):
        model = fit(data)
        for a, b in zip(model.parameters(), reference.parameters()):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b)
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=16, seed=0)
    out = model.training_step(x.double(), lambda loss, index=0: loss.backward())  # no Trainer
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, 2\)"):
        model.langevin(torch.zeros(4, 3))


@pytest.mark.parametrize(
    "jumps, from_buffer", [(0, False), (0, True), (1, False)], ids=["noise", "buffer", "jumps"]
)
def test_sample_draws_everything_from_its_generator(jumps, from_buffer):
    # every draw of a chain (start noise or buffer slots, jumps, Langevin noise) comes from the
    # generator: equal seeds give equal samples, and torch's global RNG is never touched
    model = EBM(
        MLPEnergy(2, hidden=(8,)),
        (2,),
        n_steps=3,
        buffer_size=16,
        seed=0,
        jumps=jumps,
        clamp=(-1.0, 1.0) if jumps else None,
    )
    state = torch.get_rng_state()
    a = model.sample(6, from_buffer=from_buffer, generator=torch.Generator().manual_seed(1))
    b = model.sample(6, from_buffer=from_buffer, generator=torch.Generator().manual_seed(1))
    c = model.sample(6, from_buffer=from_buffer, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # without one, the global RNG: reproducible under the same global state
    torch.set_rng_state(state)
    d = model.sample(6, from_buffer=from_buffer)
    assert not torch.equal(torch.get_rng_state(), state)
    torch.set_rng_state(state)
    assert torch.equal(model.sample(6, from_buffer=from_buffer), d)


def test_mcmc_langevin_and_noise_take_a_generator():
    model = EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=3, buffer_size=8, seed=0)
    state = torch.get_rng_state()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(model.noise(4, g1), model.noise(4, g2))
    x0 = torch.zeros(4, 2)
    assert torch.equal(model.langevin(x0, 2, g1), model.langevin(x0, 2, g2))
    assert torch.equal(model.mcmc(x0, generator=g1), model.mcmc(x0, generator=g2))
    assert torch.equal(torch.get_rng_state(), state)
