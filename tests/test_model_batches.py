"""Every model's ``training_step`` reads the same batches the same way.

A batch is y itself (a tensor or numpy array) or [y, labels, ...] (JEM: [x, y, ...]); numpy,
float64 and integer data give the loss of the equivalent tensor in the model's dtype, and an
empty sequence is refused naming ``batch``. Each step runs on a copy of one model inside
``torch.random.fork_rng()``, so the global RNG's draws (negatives, noise, latents) are the same
in every call and the global state is left as it was.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from _bad_values import det, gen, net

import ebm.models as M
from ebm.energies import MLPEnergy
from ebm.models.vae import mlp_decoder, mlp_encoder

UNLABELLED = {
    "Diffusion": lambda: det(M.Diffusion(2, hidden=(8,), T=8, schedule="cosine", time_features=2)),
    "EBM": lambda: det(M.EBM(MLPEnergy(2, hidden=(8,)), (2,), n_steps=2, buffer_size=8, seed=0)),
    "CNF": lambda: det(M.CNF(2, hidden=(4,), method="rk4", step_size=0.5)),
    "VAE": lambda: det(
        M.VAE(mlp_encoder((2,), 1, hidden=(4,)), mlp_decoder((2,), 1, hidden=(4,)), 1, "gaussian")
    ),
    "GAN": lambda: M.GAN(net(2, 8, 2), net(2, 8, 1, seed=1), latent_dim=2),
    "DenoisingAutoencoder": lambda: M.DenoisingAutoencoder(net(2, 1), net(1, 2, seed=1)),
    "ContractiveAutoencoder": lambda: M.ContractiveAutoencoder(net(2, 1), net(1, 2, seed=1)),
    "LinearAutoencoder": lambda: M.LinearAutoencoder(2, 1, seed=0),
}
LABELLED = {"JEM": lambda: M.JEM(net(2, 8, 3), (2,), 3, n_steps=2, buffer_size=8, seed=0)}


def _no_optimize(loss, index=0):
    """The Trainer's optimize callback, doing nothing (the step's loss is what is compared)."""


def _loss(model, batch) -> torch.Tensor:
    """The loss of ``batch`` on a copy of ``model``, from the global RNG state of the call."""
    with torch.random.fork_rng():
        model = copy.deepcopy(model)
        manual = len(inspect.signature(model.training_step).parameters) > 1
        out = model.training_step(batch, _no_optimize) if manual else model.training_step(batch)
    return (out["loss"] if isinstance(out, dict) else out).detach()


def _data():
    g = gen(3)
    return torch.randn(6, 2, generator=g), torch.randint(0, 3, (6,), generator=g)


def test_every_model_with_a_training_step_is_covered():
    models = {
        name
        for name in M.__all__
        if inspect.isclass(getattr(M, name)) and hasattr(getattr(M, name), "training_step")
    }
    assert models == set(UNLABELLED) | set(LABELLED)


@pytest.mark.parametrize("name", sorted(UNLABELLED))
def test_array_like_and_sequence_batches_give_the_tensor_loss(name):
    model = UNLABELLED[name]()
    x, labels = _data()
    expected = _loss(model, x)
    assert torch.isfinite(expected)
    for batch in (
        x.numpy(),  # a numpy batch is y, not a list of rows
        x.double().numpy(),  # float64 data into a float32 model: computed in float32
        x.double(),
        [x],
        (x, labels),
        [x.numpy(), labels.numpy()],
    ):
        got = _loss(model, batch)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(UNLABELLED))
def test_integer_and_bool_batches_are_promoted_not_truncated(name):
    model = UNLABELLED[name]()
    x, _ = _data()
    ints = (3 * x).round().long()
    for batch, as_float in (
        (ints, ints.float()),
        (ints.numpy(), ints.float()),
        (x > 0, (x > 0).float()),
    ):
        torch.testing.assert_close(_loss(model, batch), _loss(model, as_float), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(UNLABELLED) + sorted(LABELLED))
@pytest.mark.parametrize("empty", [[], ()])
def test_an_empty_sequence_batch_is_refused_naming_batch(name, empty):
    model = {**UNLABELLED, **LABELLED}[name]()
    with pytest.raises(ValueError, match="batch"):
        _loss(model, empty)


def test_jem_reads_array_like_pairs_and_promotes_nothing_it_should_not():
    model = LABELLED["JEM"]()
    x, y = _data()
    expected = _loss(model, (x, y))
    assert torch.isfinite(expected)
    for batch in (
        (x.numpy(), y.numpy()),
        [x.double(), y.tolist()],
        [x.double().numpy(), y.int()],
        (x, y, torch.zeros(6)),  # extra entries are ignored
    ):
        torch.testing.assert_close(_loss(model, batch), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "batch,match",
    [
        (lambda x, y: x, r"batch must be labelled data .*got Tensor of shape \(6, 2\)"),
        (lambda x, y: x.numpy(), r"batch must be labelled data .*got ndarray of shape \(6, 2\)"),
        (lambda x, y: [x], r"batch must be labelled data .*length 1"),
        (lambda x, y: (torch.zeros(6, 3), y), r"batch\[0\] .*shape \(B, 2\).*got \(6, 3\)"),
        (lambda x, y: (x[:0], y[:0]), r"batch\[0\] .*B >= 1.*got \(0, 2\)"),
        (lambda x, y: (x, y.float()), r"batch\[1\] .*integer.*float32"),
        (lambda x, y: (x, y > 0), r"batch\[1\] .*integer.*bool"),
        (lambda x, y: (x, y[:5]), r"batch\[1\] .*shape \(6,\).*got \(5,\)"),
        (lambda x, y: (x, [0, 1, 2, 3, 0, 1]), r"batch\[1\] must hold indices in \[0, 3\)"),
    ],
)
def test_jem_refuses_unlabelled_or_mismatched_batches_naming_them(batch, match):
    model = LABELLED["JEM"]()
    x, y = _data()
    with pytest.raises(ValueError, match=match):
        _loss(model, batch(x, y))


@pytest.mark.parametrize("name", ["Diffusion", "EBM"])
def test_a_batch_of_the_wrong_shape_is_refused_naming_batch(name):
    model = UNLABELLED[name]()
    with pytest.raises(ValueError, match=r"batch must have shape \(B, 2\).*got \(6, 3\)"):
        _loss(model, torch.zeros(6, 3))


@pytest.mark.parametrize("name", sorted(UNLABELLED))
@pytest.mark.parametrize("wrap", [lambda x: x, lambda x: [x], lambda x: x.numpy()])
def test_a_batch_without_samples_is_refused_naming_batch(name, wrap):
    """A mean over zero samples is NaN: refused before any work, by every model."""
    model = UNLABELLED[name]()
    with pytest.raises(ValueError, match=r"batch must hold at least one sample.*\(0, 2\)"):
        _loss(model, wrap(torch.zeros(0, 2)))


@pytest.mark.parametrize(
    "bad", [torch.zeros(6, 3), torch.zeros(6), torch.zeros(6, 2, 1), torch.zeros(6, 1, 2)]
)
def test_gan_refuses_real_samples_not_shaped_like_its_outputs(bad):
    """They reached the discriminator: torch's "mat1 and mat2 shapes cannot be multiplied", or a
    discriminator that takes any trailing shape trained on the wrong one."""
    with pytest.raises(ValueError, match=r"batch must hold real samples shaped like .*\(B, 2\)"):
        _loss(UNLABELLED["GAN"](), bad)
