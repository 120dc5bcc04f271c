"""ebm.sampling.uniform_jump: a Metropolis independence sampler with uniform proposals on a box."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import MLPEnergy
from ebm.models import EBM
from ebm.sampling import langevin, uniform_jump


def two_wells(x: torch.Tensor) -> torch.Tensor:
    """E = −log p for p = 0.8·N(−2, 0.2²) + 0.2·N(2, 0.2²) on the line; x (B, 1) -> (B,)."""
    log_left = math.log(0.8) - 0.5 * ((x[:, 0] + 2) / 0.2) ** 2
    log_right = math.log(0.2) - 0.5 * ((x[:, 0] - 2) / 0.2) ** 2
    return -torch.logaddexp(log_left, log_right)


def test_chains_started_in_one_mode_reach_the_mixture_weights():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((4000, 1), -2.0)
    # Langevin alone never crosses the ~50-nat wall between the wells ...
    stuck = langevin(two_wells, x0, 500, 0.005, generator=g)
    assert float((stuck[:, 0] > 0).float().mean()) == 0.0
    # ... while jumps move chains between them in proportion to the masses (0.2 on the right)
    x, rate = uniform_jump(two_wells, x0, 300, -4.0, 4.0, generator=g)
    right = float((x[:, 0] > 0).float().mean())
    assert right == pytest.approx(0.2, abs=0.025)  # 4 standard errors at 4000 chains
    # inside each well the states are the well's Gaussian: std 0.2 about ±2
    left = x[x[:, 0] < 0, 0]
    assert float(left.mean()) == pytest.approx(-2.0, abs=0.02)
    assert float(left.std()) == pytest.approx(0.2, abs=0.02)
    # stationary acceptance of an independence sampler: E_{x~p, x'~q}[min(1, p(x')/p(x))],
    # here about the fraction of the box where p is high (2.5·0.2·√(2π)/8 ≈ 0.16 in all)
    assert 0.05 < float(rate) < 0.3


def test_a_flat_energy_accepts_every_proposal_and_fills_the_box():
    g = torch.Generator().manual_seed(1)
    x, rate = uniform_jump(lambda x: x.sum(1) * 0.0, torch.zeros(2000, 2), 1, -1.0, 3.0, g)
    assert float(rate) == 1.0
    assert float(x.min()) >= -1.0 and float(x.max()) <= 3.0
    assert x.mean(0).tolist() == pytest.approx([1.0, 1.0], abs=0.1)  # uniform on [−1, 3]²


def test_no_steps_returns_a_copy_and_nan_rows_stay_nan():
    x0 = torch.zeros(4, 2)
    x, rate = uniform_jump(lambda x: x.pow(2).sum(1), x0, 0, -1.0, 1.0)
    assert torch.equal(x, x0) and x is not x0 and float(rate) == 0.0
    x0[1] = float("nan")
    x, _ = uniform_jump(lambda x: x.pow(2).sum(1), x0, 20, -1.0, 1.0)
    assert torch.isnan(x[1]).all() and torch.isfinite(x[[0, 2, 3]]).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"low": 1.0, "high": 1.0}, "low must be < high"),
        ({"low": float("nan")}, "low"),
        ({"n_steps": -1}, "n_steps"),
        ({"energy": 3}, "energy must be callable"),
        ({"energy": lambda x: x}, r"energy must return one value per sample, shape \(4,\)"),
        ({"x0": torch.zeros(0, 2)}, "x0"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = dict(energy=lambda x: x.pow(2).sum(1), x0=torch.zeros(4, 2), n_steps=1)
    args.update(low=-1.0, high=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        uniform_jump(**args)


def test_ebm_jumps_need_uniform_noise_and_run_before_langevin():
    with pytest.raises(ValueError, match="init_noise='uniform'"):
        EBM(MLPEnergy(2, hidden=(8,)), (2,), jumps=1, init_noise="normal")
    for clamp in (None, (-2.0, 2.0), (-1.0, 2.0)):  # the proposals' box is [−1, 1]²
        with pytest.raises(ValueError, match=r"clamp=\(-init_scale, init_scale\)"):
            EBM(MLPEnergy(2, hidden=(8,)), (2,), jumps=1, clamp=clamp)
    with pytest.raises(ValueError, match="jumps"):
        EBM(MLPEnergy(2, hidden=(8,)), (2,), jumps=-1)
    # with zero Langevin noise and step, the negatives are the jumped buffer states: every one
    # inside the box, and for a flat energy (zero last layer) every proposal is accepted
    energy = MLPEnergy(2, hidden=(8,))
    torch.nn.init.zeros_(energy.net[-1].weight)
    model = EBM(
        energy,
        (2,),
        n_steps=1,
        step_size=1e-12,
        noise_scale=0.0,
        buffer_size=64,
        reinit_prob=0.0,
        init_scale=2.0,
        clamp=(-2.0, 2.0),
        jumps=1,
        seed=0,
    )
    before = model.buffer.samples.clone()
    torch.manual_seed(0)
    out = model._negatives(torch.zeros(64, 2))
    assert (out.abs() <= 2.0).all()
    assert not torch.isclose(out, before[: len(out)]).all(dim=1).any()  # all moved


def test_ebm_mcmc_is_langevin_without_jumps_and_blocks_with_them():
    energy = MLPEnergy(2, hidden=(8,))
    plain = EBM(energy, (2,), n_steps=5, step_size=0.01, buffer_size=8, seed=0)
    x0 = torch.rand(6, 2)
    torch.manual_seed(3)
    a = plain.mcmc(x0, 7)
    torch.manual_seed(3)
    b = plain.langevin(x0, 7)
    assert torch.equal(a, b)
    jumpy = EBM(
        energy, (2,), n_steps=5, step_size=0.01, buffer_size=8, seed=0, jumps=2, clamp=(-1, 1)
    )
    with pytest.raises(ValueError, match="n_steps must be a multiple of the model's n_steps=5"):
        jumpy.mcmc(x0, 7)
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, 2\)"):
        jumpy.mcmc(torch.zeros(3, 3), 5)
    assert torch.equal(jumpy.mcmc(x0, 0), x0)
    assert jumpy.sample(4, n_steps=10).shape == (4, 2)


def test_ebm_sample_with_jumps_finds_the_mixture_weights():
    # an EBM whose energy is the two-well mixture on [−4, 4]: Langevin from noise lands in each
    # well by the size of its basin (about half each); with jumps, by mass (0.8 / 0.2)
    class TwoWells(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return two_wells(x) + 0 * self.unused

    common = dict(n_steps=10, step_size=0.002, clamp=(-4.0, 4.0), init_scale=4.0, seed=0)
    torch.manual_seed(0)
    plain = EBM(TwoWells(), (1,), **common).sample(4000, n_steps=500)
    jumpy = EBM(TwoWells(), (1,), jumps=1, **common).sample(4000, n_steps=500)
    assert float((plain[:, 0] > 0).float().mean()) == pytest.approx(0.5, abs=0.05)
    assert float((jumpy[:, 0] > 0).float().mean()) == pytest.approx(0.2, abs=0.025)
