"""Ratio matching and minimum probability flow on binary data: brute-force values and gradients,
and their minimisers against the closed form (the data distribution), by enumeration."""

import itertools
import math

import pytest
import torch
from torch import nn

import ebm.losses as L

F64 = torch.float64
D = 4
STATES = torch.tensor(list(itertools.product([0, 1], repeat=D)), dtype=F64)  # (16, 4)
LOSSES = {"rm": L.ratio_matching_loss, "mpf": L.mpf_loss}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Table(nn.Module):
    """A fully parametrised energy on {0, 1}^d: one free value per state."""

    def __init__(self, d: int = D, init: torch.Tensor | None = None):
        super().__init__()
        self.d = d
        self.table = nn.Parameter(torch.zeros(2**d, dtype=F64) if init is None else init.clone())
        self.register_buffer("powers", 2 ** torch.arange(d - 1, -1, -1, dtype=F64))

    def index(self, x):
        return (x @ self.powers).round().long()

    def forward(self, x):
        return self.table[self.index(x)]


def brute_force(name, table, x):
    """Per-sample losses from the definitions, bit by bit, in python floats."""
    out = []
    for row in x.tolist():
        e = table[int("".join(str(int(b)) for b in row), 2)]
        total = 0.0
        for i in range(len(row)):
            flipped = list(row)
            flipped[i] = 1 - flipped[i]
            e_i = table[int("".join(str(int(b)) for b in flipped), 2)]
            if name == "rm":
                total += (1 / (1 + math.exp(e_i - e))) ** 2  # σ(E(x) − E(x^{-i}))²
            else:
                total += math.exp((e - e_i) / 2)
        out.append(total)
    return out


def torch_brute_force(name, energy, x):
    """The same definitions in torch, one flip at a time (for autograd)."""
    total = 0.0
    e = energy(x)
    for i in range(x.shape[1]):
        flipped = x.clone()
        flipped[:, i] = 1 - flipped[:, i]
        diff = e - energy(flipped)
        total = total + (torch.sigmoid(diff) ** 2 if name == "rm" else torch.exp(diff / 2))
    return total


def random_data(n, seed=0):
    return torch.randint(0, 2, (n, D), generator=gen(seed)).to(F64)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_values_equal_brute_force(name):
    table = torch.randn(2**D, generator=gen(1), dtype=F64) * 2
    x = random_data(9)
    got = LOSSES[name](Table(init=table), x, reduction="none")
    expected = torch.tensor(brute_force(name, table.tolist(), x), dtype=F64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(LOSSES[name](Table(init=table), x), expected.mean())
    torch.testing.assert_close(LOSSES[name](Table(init=table), x, "sum"), expected.sum())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_equal_brute_force_autograd(name):
    energy = Table(init=torch.randn(2**D, generator=gen(2), dtype=F64))
    x = random_data(7, seed=3)
    (got,) = torch.autograd.grad(LOSSES[name](energy, x), energy.table)
    (expected,) = torch.autograd.grad(torch_brute_force(name, energy, x).mean(), energy.table)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # and against finite differences, for a smooth energy (a Boltzmann machine)
    W = torch.randn(D, D, generator=gen(4), dtype=F64, requires_grad=True)
    b = torch.randn(D, generator=gen(5), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda W, b: LOSSES[name](lambda y: ((y @ W) * y).sum(1) + y @ b, x), (W, b)
    )


def test_known_values():
    """A flat energy: σ(0)² = ¼ and e⁰ = 1 per bit; a gap of g to every neighbour: σ(−g)² and
    e^{−g/2} per bit."""
    flat = lambda y: torch.zeros(y.shape[0], dtype=y.dtype)  # noqa: E731
    x = STATES[:3]
    assert L.ratio_matching_loss(flat, x).item() == pytest.approx(D / 4)
    assert L.mpf_loss(flat, x).item() == pytest.approx(D)
    g = 3.0
    parity = lambda y: g * (y.sum(1) % 2)  # noqa: E731  even states low, odd states high by g
    even = STATES[STATES.sum(1) % 2 == 0]
    assert L.ratio_matching_loss(parity, even).item() == pytest.approx(D / (1 + math.exp(g)) ** 2)
    assert L.mpf_loss(parity, even).item() == pytest.approx(D * math.exp(-g / 2))


def _fit(name, x, weights=None, steps=200):
    """Minimise the loss over a tabular energy with L-BFGS; returns softmax(−E) over STATES."""
    energy = Table()
    opt = torch.optim.LBFGS(
        energy.parameters(),
        lr=1.0,
        max_iter=steps,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        per_sample = LOSSES[name](energy, x, reduction="none")
        loss = per_sample.mean() if weights is None else (weights * per_sample).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    with torch.no_grad():
        return torch.softmax(-energy(STATES), 0)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_population_minimiser_is_the_data_distribution(name):
    """The expected loss under a full-support p_d (weights on the enumerated states) is minimised
    by the tabular energy E = −log p_d + const."""
    p_data = torch.softmax(torch.randn(2**D, generator=gen(6), dtype=F64), 0)
    p_model = _fit(name, STATES, weights=p_data)
    torch.testing.assert_close(p_model, p_data, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_empirical_minimiser_is_the_empirical_distribution(name):
    """On samples that visit every state, the minimiser is the empirical distribution (the
    closed form), not the distribution the samples came from."""
    p_true = torch.softmax(torch.randn(2**D, generator=gen(7), dtype=F64), 0)
    idx = torch.multinomial(p_true, 400, replacement=True, generator=gen(8))
    counts = torch.bincount(idx, minlength=2**D).to(F64)
    assert bool((counts > 0).all())  # every state seen: the empirical distribution has full support
    p_empirical = counts / counts.sum()
    p_model = _fit(name, STATES[idx])
    torch.testing.assert_close(p_model, p_empirical, rtol=1e-5, atol=1e-7)
    assert (p_model - p_true).abs().max() > 1e-3  # it is the sample's distribution that is matched


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_input_forms(name):
    """int/bool/list x give the float result; (B, 1) energies are squeezed; a float32 module casts
    float64 data; the module form equals the function; reduction="none" is (B,)."""
    energy = Table(init=torch.randn(2**D, generator=gen(9), dtype=F64))
    x = random_data(5, seed=10)
    expected = LOSSES[name](energy, x, reduction="none")
    assert expected.shape == (5,)
    for form in (x.long(), x.bool(), x.tolist()):
        torch.testing.assert_close(LOSSES[name](energy, form, reduction="none"), expected)
    column = LOSSES[name](lambda y: energy(y).unsqueeze(1), x, reduction="none")
    torch.testing.assert_close(column, expected)
    module = {"rm": L.RatioMatchingLoss, "mpf": L.MPFLoss}[name](reduction="none")
    torch.testing.assert_close(module(energy, x), expected)
    assert LOSSES[name](energy.float(), x).dtype == torch.float32


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_inputs_name_the_argument(name):
    x = random_data(3)
    with pytest.raises(ValueError, match="energy"):
        LOSSES[name]("not callable", x)
    with pytest.raises(ValueError, match="energy"):
        LOSSES[name](lambda y: torch.zeros(y.shape[0], 2), x)  # not one energy per sample
    with pytest.raises(ValueError, match="x"):
        LOSSES[name](Table(), x[0])  # (d,) not (B, d)
    with pytest.raises(ValueError, match="reduction"):
        LOSSES[name](Table(), x, reduction="avg")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_nan_propagates_per_row(name):
    """A forward pass: no value check on x, a NaN row gives NaN in that row only."""
    powers = 2.0 ** torch.arange(D, dtype=F64)
    energy = lambda y: torch.sin(y @ powers)  # noqa: E731  smooth, so NaN is not an index
    x = random_data(4, seed=11)
    x[1, 2] = float("nan")
    out = LOSSES[name](energy, x, reduction="none")
    assert out.isnan().tolist() == [False, True, False, False]
