"""Denoising and contractive autoencoders: exact Jacobian penalty, energies, training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ebm.data.toy2d import parabola
from ebm.models import ContractiveAutoencoder, DenoisingAutoencoder
from ebm.train import Trainer


def _brute_penalty(encoder: nn.Module, y: torch.Tensor, create_graph: bool = False):
    rows = []
    for sample in y:
        J = torch.autograd.functional.jacobian(
            lambda v: encoder(v.unsqueeze(0)).squeeze(0), sample, create_graph=create_graph
        )
        rows.append(J.square().sum())
    return torch.stack(rows)


@pytest.mark.parametrize("code_dim", [1, 6])  # forward mode (code wider) and reverse mode
def test_contractive_penalty_equals_autograd_jacobian(code_dim):
    cae = ContractiveAutoencoder.mlp(3, (8,), code_dim, activation=nn.Tanh).double()
    y = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(cae.contractive_penalty(y), _brute_penalty(cae.encoder, y))
    # and its gradient w.r.t. the parameters (what training uses)
    params = list(cae.encoder.parameters())
    # (the last bias does not move the Jacobian: its gradient is a materialised zero)
    ours = torch.autograd.grad(
        cae.contractive_penalty(y).sum(), params, allow_unused=True, materialize_grads=True
    )
    ref = torch.autograd.grad(
        _brute_penalty(cae.encoder, y, create_graph=True).sum(),
        params,
        allow_unused=True,
        materialize_grads=True,
    )
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_contractive_penalty_on_images():
    torch.manual_seed(1)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), nn.Sigmoid())
    decoder = nn.Sequential(nn.Linear(5, 16), nn.Unflatten(1, (1, 4, 4)))
    cae = ContractiveAutoencoder(encoder, decoder, jacobian_weight=0.5).double()
    y = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(cae.contractive_penalty(y), _brute_penalty(encoder, y))
    # a linear-sigmoid encoder has the closed form Σ_j (h_j(1 − h_j))² ‖W_j‖²
    h = encoder(y)
    closed = ((h * (1 - h)).square() * encoder[1].weight.square().sum(1)).sum(1)
    torch.testing.assert_close(cae.contractive_penalty(y), closed)
    assert cae.energy(y).shape == (4,)


def test_energy_is_squared_reconstruction_error():
    torch.manual_seed(2)
    dae = DenoisingAutoencoder.mlp(2, (16,), 2)
    y = torch.randn(10, 2)
    expected = ((y - dae.decoder(dae.encoder(y))) ** 2).sum(1)
    torch.testing.assert_close(dae.energy(y), expected)
    torch.testing.assert_close(dae.field(y), dae.decoder(dae.encoder(y)) - y)


def test_mask_noise_zeroes_a_fraction_p():
    dae = DenoisingAutoencoder.mlp(4, (8,), 2, noise="mask", p=0.3)
    y = torch.ones(20000, 4)
    torch.manual_seed(3)
    zeroed = (dae.corrupt(y) == 0).float().mean()
    assert abs(zeroed - 0.3) < 0.01


def test_dae_energy_lower_on_the_manifold_than_off_it():
    data = parabola(2000, noise=0.05, generator=torch.Generator().manual_seed(0))
    dae = DenoisingAutoencoder.mlp(2, (64, 64), 2, sigma=0.3, lr=3e-3)
    trainer = Trainer(max_epochs=15, batch_size=128, seed=0, device="cpu").fit(dae, data)
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]
    on = parabola(500, noise=0.0, low=-1.2, high=1.2, generator=torch.Generator().manual_seed(1))
    off = on + torch.tensor([0.0, 0.6])  # 0.6 above the parabola
    with torch.no_grad():
        assert dae.energy(on).mean() < 0.25 * dae.energy(off).mean()


def test_cae_trains_through_the_trainer():
    data = parabola(512, generator=torch.Generator().manual_seed(2))
    cae = ContractiveAutoencoder.mlp(2, (32,), 1, jacobian_weight=0.01, lr=3e-3)
    trainer = Trainer(max_epochs=8, batch_size=128, seed=0, device="cpu").fit(cae, data)
    history = trainer.history
    assert {"loss", "reconstruction", "penalty"} <= set(history[-1])
    assert history[-1]["loss"] < history[0]["loss"]


def test_bad_input():
    enc, dec = nn.Linear(2, 1), nn.Linear(1, 2)
    with pytest.raises(ValueError, match="noise"):
        DenoisingAutoencoder(enc, dec, noise="salt")
    with pytest.raises(ValueError, match="p must"):
        DenoisingAutoencoder(enc, dec, noise="mask", p=1.0)
    with pytest.raises(ValueError, match="sigma"):
        DenoisingAutoencoder(enc, dec, sigma=0.0)
    with pytest.raises(ValueError, match="jacobian_weight"):
        ContractiveAutoencoder(enc, dec, jacobian_weight=-1.0)
    with pytest.raises(ValueError, match="nn.Module"):
        ContractiveAutoencoder(lambda y: y, dec)
    with pytest.raises(ValueError, match="decoder output"):
        DenoisingAutoencoder(enc, nn.Linear(1, 3)).energy(torch.randn(4, 2))


def test_hyper_parameters_are_validated_by_name():
    enc, dec = nn.Linear(2, 1), nn.Linear(1, 2)
    bad = [
        (lambda: DenoisingAutoencoder(enc, dec, weight_decay=math.nan), "weight_decay"),
        (lambda: DenoisingAutoencoder(enc, dec, weight_decay=-1e-3), "weight_decay"),
        (lambda: DenoisingAutoencoder(enc, dec, weight_decay="0"), "weight_decay"),
        (lambda: DenoisingAutoencoder(enc, dec, p=math.nan), "p must"),
        (lambda: DenoisingAutoencoder(enc, dec, p=-0.1), "p must"),
        (lambda: DenoisingAutoencoder(enc, dec, sigma=math.inf), "sigma"),
        (lambda: DenoisingAutoencoder(enc, dec, lr=math.nan), "lr"),
        (lambda: ContractiveAutoencoder(enc, dec, jacobian_weight=math.inf), "jacobian_weight"),
        (lambda: ContractiveAutoencoder(enc, dec, jacobian_weight=math.nan), "jacobian_weight"),
        (lambda: DenoisingAutoencoder.mlp(2, hidden=(0,)), "hidden must hold ints >= 1"),
        (lambda: DenoisingAutoencoder.mlp(2, hidden=(8,), code_dim=0), "code_dim"),
        (lambda: DenoisingAutoencoder.mlp(2.0), "dim must be an int"),
    ]
    for make, name in bad:
        with pytest.raises(ValueError, match=name) as info:
            make()
        assert "sizes" not in str(info.value)


def test_inputs_are_promoted_and_cast_to_the_parameters_dtype():
    model = DenoisingAutoencoder.mlp(2, hidden=(8,), code_dim=1)  # float32
    y = torch.tensor([[1, 2], [0, -1]])
    expected = model(y.float())
    for given in (y, y.double(), y.numpy(), y.tolist()):
        out = model(given)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected)
    torch.testing.assert_close(model.field(y), model.reconstruct(y.float()) - y.float())
    cae = ContractiveAutoencoder.mlp(2, (8,), 1).double()
    assert cae.contractive_penalty(torch.zeros(0, 2)).shape == (0,)  # was an IndexError
    torch.testing.assert_close(
        cae.contractive_penalty(y), cae.contractive_penalty(y.double()), rtol=0, atol=0
    )


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_corrupt_draws_from_its_generator(noise):
    dae = DenoisingAutoencoder(nn.Linear(3, 2), nn.Linear(2, 3), noise=noise)
    y = torch.ones(64, 3)
    state = torch.get_rng_state()
    a = dae.corrupt(y, generator=torch.Generator().manual_seed(0))
    b = dae.corrupt(y, generator=torch.Generator().manual_seed(0))
    c = dae.corrupt(y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)
