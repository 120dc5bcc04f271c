"""The fused input gradient of layer-chain energies (ebm/sampling/_fused_grad.py) and (B, 1) energies.

Every fused gradient is compared with autograd's ∇ₓE of the same module; modules that are not a
plain chain (residual, LayerNorm, buffers, hooks, data-dependent branches) must not take the
fused path, and the samplers then still give autograd's answer.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ebm.energies import Energy, MLPEnergy
from ebm.inference import gradient_descent, gradient_flow
from ebm.models import EBM
from ebm.sampling import _fused_grad, hmc, langevin, mala, uniform_jump
from ebm.sampling._fused_grad import fused_chain
from ebm.score_matching import (
    denoising_score_matching_loss,
    exact_score_matching_loss,
    sliced_score_matching_loss,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Wrapped(nn.Module):
    """A user's energy: an MLP held as a submodule, the forward squeezes its (B, 1) output."""

    def __init__(self, d: int, act: type[nn.Module] = nn.SiLU, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, 1)
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


class Functional(nn.Module):
    """Functional activations, constant scales and shifts, [:, 0] and an unused keyword."""

    def __init__(self, d: int):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(d, 8), nn.Linear(8, 8), nn.Linear(8, 1)

    def forward(self, x, temperature=None):
        h = F.softplus(self.a(x), beta=2.0)
        h = torch.tanh(self.b(h)) * 2.0 - 1
        return -self.c(h / 4)[:, 0] / 3 + 5


class Quadratic(Energy):
    """An ``ebm.Energy`` subclass with forward(y, x=None) over a Linear/activation chain."""

    def __init__(self, d: int):
        super().__init__()
        self.hidden, self.out = nn.Linear(d, 12), nn.Linear(12, 1)

    def forward(self, y, x=None):
        return self.out(F.gelu(self.hidden(y))).flatten()


class ConvEnergy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, 1, 1),
            nn.SiLU(),
            nn.Conv2d(4, 8, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8, 8, 3, 2, 1, groups=2),
            nn.ELU(),
            nn.Flatten(),
            nn.Linear(8 * 7 * 7, 16),
            nn.ReLU(),
            nn.Linear(16, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def _fused_cases():
    d = 5
    return {
        "wrapped silu": (lambda: Wrapped(d), (7, d)),
        "wrapped tanh": (lambda: Wrapped(d, nn.Tanh), (7, d)),
        "wrapped sigmoid": (lambda: Wrapped(d, nn.Sigmoid), (7, d)),
        "wrapped gelu": (lambda: Wrapped(d, nn.GELU), (7, d)),
        "sequential (B, 1)": (
            lambda: nn.Sequential(nn.Linear(d, 9), nn.Softplus(), nn.Linear(9, 1)),
            (7, d),
        ),
        "sequential gelu-tanh relu": (
            lambda: nn.Sequential(
                nn.Linear(d, 6),
                nn.GELU(approximate="tanh"),
                nn.Linear(6, 6),
                nn.ReLU(),
                nn.Linear(6, 1),
            ),
            (7, d),
        ),
        "functional": (lambda: Functional(d), (7, d)),
        "ebm.Energy subclass": (lambda: Quadratic(d), (7, d)),
        "single Linear(d, 1)": (lambda: nn.Linear(d, 1), (7, d)),
        "flatten + Linear": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 1)), (4, 3, 4)),
        "conv on 28x28": (ConvEnergy, (3, 1, 28, 28)),
        "rgb conv, dilation, valid padding": (
            lambda: nn.Sequential(
                nn.Conv2d(3, 4, 3, stride=1, padding=2, dilation=2),  # col2im path (3·9 <= 32)
                nn.Tanh(),
                nn.Conv2d(4, 6, 2, stride=2, padding="valid"),
                nn.Softplus(),
                nn.Flatten(),
                nn.Linear(6 * 4 * 5, 1),
            ),
            (2, 3, 9, 11),
        ),
        "conv1d": (
            lambda: nn.Sequential(
                nn.Conv1d(2, 5, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(), nn.Linear(30, 1)
            ),
            (4, 2, 12),
        ),
        "MLPEnergy": (lambda: MLPEnergy(d, hidden=(8, 8)), (7, d)),
    }


CASES = _fused_cases()


def _autograd(module, x):
    x = x.clone().requires_grad_(True)
    e = module(x)
    (grad,) = torch.autograd.grad(e.sum(), x)
    return e.detach().reshape(-1), grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_fused_gradient_equals_autograd(name, dtype):
    make, shape = CASES[name]
    torch.manual_seed(0)  # the modules' initial weights only
    module = make().to(dtype)
    chain = fused_chain(module)
    assert chain is not None, f"{name} should take the fused path"
    x = torch.randn(shape, generator=_gen(1), dtype=dtype)
    e_ref, g_ref = _autograd(module, x)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(chain.grad(x), g_ref, **tol)
    e, g = chain.value_and_grad(x)
    torch.testing.assert_close(g, g_ref, **tol)
    torch.testing.assert_close(e, e_ref, **tol)
    assert g.shape == x.shape and e.shape == (shape[0],)


class Residual(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a, self.c = nn.Linear(d, d), nn.Linear(d, 1)

    def forward(self, x):
        return self.c(torch.relu(self.a(x)) + x).squeeze(-1)


class Centred(nn.Module):
    """Uses a buffer: not a plain chain of layers."""

    def __init__(self, d):
        super().__init__()
        self.register_buffer("mean", torch.full((d,), 0.5))
        self.net = nn.Sequential(nn.Linear(d, 8), nn.SiLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x - self.mean).squeeze(-1)


class Branching(nn.Module):
    """A data-dependent branch: fx cannot trace it."""

    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 8), nn.SiLU(), nn.Linear(8, 1))

    def forward(self, x):
        e = self.net(x).squeeze(-1)
        return e if bool(x.sum() > 0) else 2 * e


class TwoOutputsSummed(nn.Module):
    """Ends in Linear(h, 2) summed: the head is not Linear(h, 1)."""

    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x).pow(2).sum(-1)


def _hooked(d):
    module = Wrapped(d)
    module.net[1].register_forward_hook(lambda m, inputs, out: out * 2)
    return module


class SquaredMLPEnergy(MLPEnergy):
    """A subclass that changes forward: its net alone is not the energy."""

    def forward(self, y, x=None):
        return super().forward(y, x).pow(2)


NOT_FUSED = {
    "residual": lambda d: Residual(d),
    "layernorm": lambda d: nn.Sequential(nn.Linear(d, 8), nn.LayerNorm(8), nn.Linear(8, 1)),
    "batchnorm (eval)": lambda d: nn.Sequential(
        nn.Linear(d, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Linear(8, 1)
    ).eval(),
    "buffer": lambda d: Centred(d),
    "branch": lambda d: Branching(d),
    "hook": _hooked,
    "Linear(h, 2) head": lambda d: TwoOutputsSummed(d),
    "unsupported activation": lambda d: nn.Sequential(
        nn.Linear(d, 8), nn.Hardswish(), nn.Linear(8, 1)
    ),
    "conditional MLPEnergy": lambda d: MLPEnergy(d, cond_dim=1),
    "MLPEnergy subclass with its own forward": lambda d: SquaredMLPEnergy(d, hidden=(8,)),
}


@pytest.mark.parametrize("name", list(NOT_FUSED))
def test_modules_that_are_not_a_chain_use_autograd(name):
    d = 3
    torch.manual_seed(0)
    module = NOT_FUSED[name](d).double()
    assert fused_chain(module) is None
    if name == "conditional MLPEnergy":
        return
    x0 = torch.rand(6, d, generator=_gen(2), dtype=torch.float64)
    # the samplers' answer is autograd's: the same chains as through a plain function
    ours = langevin(module, x0, 5, 0.01, generator=_gen(3))
    reference = langevin(lambda x: module(x).reshape(-1), x0, 5, 0.01, generator=_gen(3))
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=0)


def test_fused_gradient_follows_weight_updates_and_replaced_layers():
    torch.manual_seed(0)
    module = Wrapped(4).double()
    x = torch.randn(5, 4, generator=_gen(4), dtype=torch.float64)
    assert fused_chain(module) is not None
    with torch.no_grad():
        module.net[0].weight.mul_(-2.0)  # a training step changes the weights in place
    torch.testing.assert_close(fused_chain(module).grad(x), _autograd(module, x)[1])
    module.net[1] = nn.Tanh()  # a new layer: the chain is traced again
    torch.testing.assert_close(fused_chain(module).grad(x), _autograd(module, x)[1])
    module.net[1] = nn.LayerNorm(16)  # no longer a chain of elementwise layers
    assert fused_chain(module) is None


@pytest.mark.parametrize("sampler", ["langevin", "mala", "hmc"])
def test_samplers_on_a_user_module_match_autograd(sampler, monkeypatch):
    torch.manual_seed(0)
    module = Wrapped(3, hidden=8).double()
    x0 = torch.randn(16, 3, generator=_gen(5), dtype=torch.float64)
    plain = lambda x: module(x)  # noqa: E731 - a function: no fused path
    run = {
        "langevin": lambda e: (langevin(e, x0, 10, 0.05, generator=_gen(6)),),
        "mala": lambda e: mala(e, x0, 10, 0.2, generator=_gen(6)),
        "hmc": lambda e: hmc(e, x0, 4, 0.1, n_leapfrog=3, generator=_gen(6)),
    }[sampler]
    calls = []
    for name in ("grad", "value_and_grad"):
        original = getattr(_fused_grad._Chain, name)

        def spy(self, x, original=original):
            calls.append(x.shape)
            return original(self, x)

        monkeypatch.setattr(_fused_grad._Chain, name, spy)
    fused = run(module)
    assert len(calls) >= 4, "the user's module should take the fused path"
    for got, expected in zip(fused, run(plain)):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def _column_energy(d=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 8), nn.SiLU(), nn.Linear(8, 1)).double()  # (B, 1)


def test_samplers_accept_b_by_1_energies():
    net = _column_energy()
    squeezed = lambda x: net(x).squeeze(-1)  # noqa: E731
    x0 = torch.rand(8, 2, generator=_gen(7), dtype=torch.float64)
    for run in (
        lambda e: (langevin(e, x0, 5, 0.05, generator=_gen(8)),),
        lambda e: mala(e, x0, 5, 0.05, generator=_gen(8)),
        lambda e: hmc(e, x0, 3, 0.05, n_leapfrog=2, generator=_gen(8)),
        lambda e: uniform_jump(e, x0, 5, 0.0, 1.0, generator=_gen(8)),
    ):
        for got, expected in zip(run(net), run(squeezed)):
            torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def _two_columns(x):
    return torch.stack([x.sum(1), x.pow(2).sum(1)], 1)  # (B, 2): not one energy per sample


@pytest.mark.parametrize(
    "call",
    [
        lambda e: langevin(e, torch.zeros(4, 2), 2, 0.1),
        lambda e: mala(e, torch.zeros(4, 2), 2, 0.1),
        lambda e: hmc(e, torch.zeros(4, 2), 2, 0.1),
        lambda e: uniform_jump(e, torch.zeros(4, 2), 2, -1.0, 1.0),
        lambda e: exact_score_matching_loss(e, torch.zeros(4, 2)),
        lambda e: sliced_score_matching_loss(e, torch.zeros(4, 2)),
        lambda e: denoising_score_matching_loss(e, torch.zeros(4, 2), 0.1),
        lambda e: gradient_flow(e, torch.zeros(4, 2), torch.tensor([0.0, 1.0])),
        lambda e: gradient_descent(e, torch.zeros(1, 4, 2), n_steps=2, lr=0.1),
    ],
)
def test_other_energy_shapes_are_refused_naming_energy(call):
    with pytest.raises(ValueError, match=r"energy must return one value per sample.*got \(4, 2\)"):
        call(_two_columns)


def test_b_by_1_energies_in_score_matching_and_inference():
    net = _column_energy()
    squeezed = lambda x: net(x).squeeze(-1)  # noqa: E731
    x = torch.randn(6, 2, generator=_gen(9), dtype=torch.float64)
    torch.testing.assert_close(
        exact_score_matching_loss(net, x), exact_score_matching_loss(squeezed, x)
    )
    torch.testing.assert_close(
        sliced_score_matching_loss(net, x, generator=_gen(1)),
        sliced_score_matching_loss(squeezed, x, generator=_gen(1)),
    )
    torch.testing.assert_close(
        denoising_score_matching_loss(net, x, 0.1, generator=_gen(2)),
        denoising_score_matching_loss(squeezed, x, 0.1, generator=_gen(2)),
    )
    t = torch.tensor([0.0, 0.5])
    torch.testing.assert_close(gradient_flow(net, x, t), gradient_flow(squeezed, x, t))
    got = gradient_descent(net, x[None], n_steps=3, lr=0.1)
    expected = gradient_descent(squeezed, x[None], n_steps=3, lr=0.1)
    torch.testing.assert_close(got.argmin, expected.argmin)
    torch.testing.assert_close(got.energy, expected.energy)


def test_ebm_model_trains_a_b_by_1_energy():
    torch.manual_seed(0)
    model = EBM(
        nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1)),
        (2,),
        n_steps=3,
        buffer_size=16,
        seed=0,
    )
    x = torch.randn(8, 2, generator=_gen(10))
    assert model(x).shape == (8,)
    losses = []
    out = model.training_step(x, losses.append)
    assert out["loss"].shape == () and len(losses) == 1 and losses[0].requires_grad
    assert model.sample(4, n_steps=2, generator=_gen(11)).shape == (4, 2)
    bad = EBM(nn.Linear(2, 2), (2,), buffer_size=4, seed=0)
    with pytest.raises(ValueError, match="energy must return one value per sample"):
        bad(x)
    with pytest.raises(ValueError, match="energy must return one value per sample"):
        bad.sample(2)
