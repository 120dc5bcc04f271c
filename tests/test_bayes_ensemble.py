"""Deep ensemble: independent members, reproducible, the caller's RNG untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebm.bayes import DeepEnsemble


def make_net():
    return nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))


@pytest.fixture(scope="module")
def data():
    x = torch.linspace(-2, 2, 32).view(-1, 1)
    return x, 0.5 * x**2


def test_members_differ_fit_the_data_and_are_reproducible(data):
    x, y = data
    rng = torch.get_rng_state()
    a = DeepEnsemble(make_net, 3, optimizer="adam", lr=0.02, max_epochs=300, seed=1, device="cpu")
    a.fit(x, y)
    assert torch.equal(torch.get_rng_state(), rng)  # no global side effect
    b = DeepEnsemble(make_net, 3, optimizer="adam", lr=0.02, max_epochs=300, seed=1, device="cpu")
    b.fit(x, y)
    pa, pb = a.predict(x), b.predict(x)
    torch.testing.assert_close(pa.samples, pb.samples)
    assert pa.samples.shape == (3, 32, 1)
    assert ((pa.mean - y) ** 2).mean() < 0.01  # all members fit the parabola
    w = [m[0].weight for m in a.members_]
    assert not torch.allclose(w[0], w[1])  # different initialisations
    far = a.predict(torch.tensor([[8.0]])).std
    assert far.item() > 3 * pa.std.mean().item()  # they disagree away from the data


def test_bad_input():
    with pytest.raises(ValueError, match="n_members"):
        DeepEnsemble(make_net, 1)
    with pytest.raises(ValueError, match="make_net"):
        DeepEnsemble(3)
    with pytest.raises(ValueError, match="not fitted"):
        DeepEnsemble(make_net).predict(torch.zeros(2, 1))
