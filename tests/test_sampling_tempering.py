"""ebm.sampling.parallel_tempering: replicas at several temperatures that exchange states."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import MLPEnergy
from ebm.sampling import langevin, mala, parallel_tempering

LADDER = [0.5**k for k in range(7)]  # 1 … 1/64: the hottest sees the 32-nat wall as 0.5 nats


def two_wells(x: torch.Tensor) -> torch.Tensor:
    """E = −log p for p = 0.3·N(−4, 0.5²) + 0.7·N(4, 0.5²): modes 16 σ apart, a 32-nat wall
    between them; x (B, 1) -> (B,)."""
    log_left = math.log(0.3) - 0.5 * ((x[:, 0] + 4) / 0.5) ** 2
    log_right = math.log(0.7) - 0.5 * ((x[:, 0] - 4) / 0.5) ** 2
    return -torch.logaddexp(log_left, log_right)


def test_chains_started_in_the_light_mode_reach_the_mixture_weights():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200, 1), -4.0)  # every chain in the 0.3 mode
    # a single temperature never crosses the wall: MALA and Langevin stay where they start
    stuck, _ = mala(two_wells, x0, 300, 0.1, generator=g)
    assert float((stuck[:, 0] > 0).float().mean()) == 0.0
    stuck = langevin(two_wells, x0, 300, 0.1, generator=g)
    assert float((stuck[:, 0] > 0).float().mean()) == 0.0
    samples, swaps = parallel_tempering(two_wells, x0, LADDER, 1000, 0.1, generator=g)
    kept = samples[300:, :, 0]  # (700, 200) after burn-in
    # the target: the mode weights within 0.02 (here about 0.01 at most over seeds)
    assert float((kept > 0).float().mean()) == pytest.approx(0.7, abs=0.02)
    # within each mode the β = 1 states are that mode's Gaussian N(±4, 0.5²)
    for side, centre in ((kept < 0, -4.0), (kept > 0, 4.0)):
        assert float(kept[side].mean()) == pytest.approx(centre, abs=0.02)
        assert float(kept[side].std()) == pytest.approx(0.5, abs=0.01)
    # a geometric ladder of ratio 1/2 in 1-D: every pair swaps often
    assert swaps.shape == (len(LADDER) - 1,) and bool((swaps > 0.5).all())


@pytest.mark.parametrize("betas", [(1.0, 0.6, 0.3, 0.1), (1.0, 0.9)])
def test_swap_acceptance_of_a_2d_gaussian_is_2r_over_1_plus_r(betas):
    # For E = ‖x‖²/(2σ²) in d = 2, the replica at β has ‖x‖²/(2σ²) = a/β with a ~ Exp(1), so
    # log α = (β_i − β_j)(a/β_i − b/β_j) = (1 − r)·a − ((1 − r)/r)·b with r = β_j/β_i; the
    # difference of two exponentials has a two-sided exponential law, and
    # E[min(1, e^Y)] = 2r/(1 + r), whatever σ.
    g = torch.Generator().manual_seed(1)
    sigma2 = 0.25
    samples, swaps = parallel_tempering(
        lambda x: 0.5 * x.pow(2).sum(1) / sigma2, torch.zeros(500, 2), betas, 800, 0.1, generator=g
    )
    expected = [2 * (b / a) / (1 + b / a) for a, b in zip(betas, betas[1:], strict=False)]
    assert swaps.tolist() == pytest.approx(expected, abs=0.01)
    # and the β = 1 replica samples N(0, σ²I) itself
    assert samples[100:].var((0, 1)).tolist() == pytest.approx([sigma2, sigma2], abs=0.01)


def test_equal_temperatures_always_swap():
    g = torch.Generator().manual_seed(2)
    _, swaps = parallel_tempering(
        two_wells, torch.randn(30, 1, generator=g), [1.0] * 3, 20, 0.1, generator=g
    )
    assert swaps.tolist() == [1.0, 1.0]


def test_one_temperature_is_mala_or_langevin_with_the_same_generator():
    energy = lambda x: 0.5 * x.pow(2).sum(1) + 0.3 * x[:, 0] ** 4  # noqa: E731
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(3))
    reference, _ = mala(energy, x0, 30, 0.2, generator=torch.Generator().manual_seed(1))
    samples, swaps = parallel_tempering(
        energy, x0, [1.0], 30, 0.2, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(samples[-1], reference)
    assert swaps.shape == (0,)
    reference = langevin(energy, x0, 30, 0.05, generator=torch.Generator().manual_seed(1))
    samples, _ = parallel_tempering(
        energy, x0, [1.0], 30, 0.05, kernel="langevin", generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(samples[-1], reference)


def test_langevin_kernel_finds_the_mixture_weights():
    g = torch.Generator().manual_seed(4)
    samples, _ = parallel_tempering(
        two_wells, torch.full((200, 1), 4.0), LADDER, 800, 0.02, kernel="langevin", generator=g
    )
    # O(step) bias in each replica, but both modes are equally wide: the weights survive
    assert float((samples[300:, :, 0] > 0).float().mean()) == pytest.approx(0.7, abs=0.03)


def test_shapes_devices_dtypes_and_untried_pairs():
    x0 = torch.zeros(4, 2, 3, dtype=torch.float64)
    energy = lambda x: x.pow(2).flatten(1).sum(1, keepdim=True)  # noqa: E731  (B, 1) accepted
    g = torch.Generator().manual_seed(5)
    samples, swaps = parallel_tempering(
        energy, x0, (1.0, 0.5, 0.25), 3, 0.1, swap_every=2, generator=g
    )
    assert samples.shape == (3, 4, 2, 3) and samples.dtype == torch.float64
    assert swaps.dtype == torch.float64
    # one round (after step 2) tried the pair (0, 1) only: the pair (1, 2) reports NaN, no data
    assert 0.0 <= float(swaps[0]) <= 1.0 and math.isnan(float(swaps[1]))
    samples, swaps = parallel_tempering(energy, x0, (1.0, 0.5), 0, 0.1)
    assert samples.shape == (0, 4, 2, 3) and math.isnan(float(swaps[0]))
    # x0 is not modified; integer x0 is promoted
    assert bool((x0 == 0).all())
    samples, _ = parallel_tempering(energy, torch.zeros(4, 2, 3, dtype=torch.int64), [1.0], 2, 0.1)
    assert samples.dtype == torch.get_default_dtype()


def test_same_generator_same_chains_and_the_fused_gradient_agrees_with_autograd():
    energy = MLPEnergy(2, hidden=(16, 16))
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(6))
    run = lambda e: parallel_tempering(  # noqa: E731
        e, x0, (1.0, 0.5, 0.25), 40, 0.05, generator=torch.Generator().manual_seed(7)
    )
    fused, swaps = run(energy)  # an MLPEnergy takes the fused input gradient
    again, swaps_again = run(energy)
    assert torch.equal(fused, again) and torch.equal(swaps, swaps_again)
    by_autograd, _ = run(lambda x: energy(x))  # a plain callable goes through autograd
    torch.testing.assert_close(fused, by_autograd, rtol=1e-4, atol=1e-5)
    assert all(p.requires_grad for p in energy.parameters())  # weights unfrozen after


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(betas=(0.5, 0.25)), "betas must start at 1.0"),
        (dict(betas=(1.0, 0.25, 0.5)), "betas must be non-increasing"),
        (dict(betas=(0.25, 0.5, 1.0)), "betas must start at 1.0"),
        (dict(betas=(1.0, 0.0)), "betas must all be > 0"),
        (dict(betas=(1.0, -0.5)), "betas must all be > 0"),
        (dict(betas=(1.0, math.nan)), "betas"),
        (dict(betas=(1.0, math.inf)), "betas"),
        (dict(betas=()), "betas must hold at least one"),
        (dict(betas=[[1.0, 0.5]]), "betas"),
        (dict(betas="1.0"), "betas"),
        (dict(x0=torch.tensor([[0.0], [math.nan]])), "x0 must be finite"),
        (dict(x0=torch.zeros(0, 1)), "x0"),
        (dict(n_steps=-1), "n_steps"),
        (dict(n_steps=2.5), "n_steps"),
        (dict(step_size=0.0), "step_size"),
        (dict(step_size=math.inf), "step_size"),
        (dict(swap_every=0), "swap_every"),
        (dict(swap_every=1.5), "swap_every"),
        (dict(kernel="hmc"), "kernel"),
        (dict(compile="yes"), r"compile must be one of \(False, True\), got 'yes'"),
        (dict(compile=1), "compile"),
        (dict(generator=3), "generator"),
        (dict(energy=3), "energy"),
        (dict(energy=lambda x: x), "energy"),  # (B, 2): not one value per sample
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = dict(
        energy=lambda x: x.pow(2).sum(1),
        x0=torch.zeros(3, 2),
        betas=(1.0, 0.5),
        n_steps=2,
        step_size=0.1,
    )
    with pytest.raises(ValueError, match=match):
        parallel_tempering(**{**args, **kwargs})


def test_swap_acceptance_in_higher_dimensions_follows_the_erfc_law():
    # the guide's ladder advice: for a Gaussian in d dimensions (d large) the neighbours'
    # acceptance is about erfc(|log r|·√(d/8)), r = β_{k+1}/β_k
    g = torch.Generator().manual_seed(8)
    d, r = 32, 0.8
    _, swaps = parallel_tempering(
        lambda x: 0.5 * x.pow(2).sum(1),
        torch.randn(300, d, generator=g),
        [1.0, r],
        400,
        0.3,
        generator=g,
    )
    assert float(swaps[0]) == pytest.approx(
        math.erfc(abs(math.log(r)) * math.sqrt(d / 8)), abs=0.03
    )


def test_a_swap_trades_states_energies_and_gradients_within_each_chain_only():
    from ebm.sampling._tempering import _swap

    n_temps, n = 4, 3
    x = torch.arange(n_temps * n, dtype=torch.float64).view(
        -1, 1
    )  # row k·n + j: replica k, chain j
    grad = -x
    # chain 0: every pair would gain (accepted), chain 1: every pair would lose by 1e9 nats
    # (rejected), chain 2: NaN energies (never accepted)
    e = torch.tensor([[0.0, 0.0, math.nan]]).repeat(n_temps, 1).double()
    e[:, 0] = torch.tensor([3.0, 2.0, 1.0, 0.0]).double() * 1e9
    e[:, 1] = torch.tensor([0.0, 1.0, 2.0, 3.0]).double() * 1e9
    gaps = torch.full((n_temps - 1, 1), 0.5, dtype=torch.float64)
    accepted = torch.zeros(n_temps - 1, dtype=torch.float64)
    x2, e2, g2 = _swap(x, e.view(-1), grad, gaps, 1, accepted, torch.Generator().manual_seed(0))
    # parity 1 tries the pair (1, 2) only: chain 0's replicas 1 and 2 traded, the rest stayed
    expected = x.clone().view(n_temps, n)
    expected[1, 0], expected[2, 0] = x.view(n_temps, n)[2, 0], x.view(n_temps, n)[1, 0]
    assert torch.equal(x2.view(n_temps, n), expected)
    assert torch.equal(g2, -x2)  # the gradient travelled with its state
    assert e2.view(n_temps, n)[1, 0] == 1e9 and e2.view(n_temps, n)[2, 0] == 2e9
    assert accepted.tolist() == pytest.approx([0.0, 1 / 3, 0.0])


def test_nan_energies_are_never_accepted():
    def energy(x):  # NaN to the right of 1: proposals or swaps there must be refused
        e = 0.5 * x[:, 0] ** 2
        return torch.where(x[:, 0] > 1.0, torch.full_like(e, math.nan), e)

    samples, swaps = parallel_tempering(
        energy, torch.zeros(50, 1), (1.0, 0.3), 200, 0.2, generator=torch.Generator().manual_seed(9)
    )
    assert bool((samples <= 1.0).all()) and bool(torch.isfinite(swaps).all())


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["mala", "langevin"])
def test_compiled_moves_match_eager(kernel):
    """compile=True runs the same arithmetic on the same draws: the same chains and swap rates
    (to float32 reordering), for an autograd-path energy (torch.func under compile)."""
    x0 = torch.linspace(-5.0, 5.0, 16).unsqueeze(1)
    kw = dict(betas=(1.0, 0.5, 0.25), n_steps=6, step_size=0.05, kernel=kernel)
    eager = parallel_tempering(two_wells, x0, generator=torch.Generator().manual_seed(0), **kw)
    compiled = parallel_tempering(
        two_wells, x0, generator=torch.Generator().manual_seed(0), compile=True, **kw
    )
    torch.testing.assert_close(compiled[0], eager[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled[1], eager[1], equal_nan=True)


def test_scalar_events_sample_the_target():
    # x0 of shape (n_chains,): the event is a scalar, as (n_chains, *event) allows
    g = torch.Generator().manual_seed(0)
    samples, swaps = parallel_tempering(
        lambda x: 0.5 * x**2, torch.zeros(2000), [1.0, 0.5], 400, 0.1, generator=g
    )
    assert samples.shape == (400, 2000) and swaps.shape == (1,)
    assert abs(samples[100:].var().item() - 1.0) < 0.05  # N(0, 1)
    assert abs(samples[100:].mean().item()) < 0.05


def test_a_beta_below_the_chains_dtype_range_is_refused():
    with pytest.raises(ValueError, match="betas must be >="):
        parallel_tempering(
            lambda x: 0.5 * x.square().sum(1), torch.zeros(4, 1), [1.0, 1e-46], 3, 0.5
        )
    # the same ladder is fine in float64
    parallel_tempering(
        lambda x: 0.5 * x.square().sum(1),
        torch.zeros(4, 1, dtype=torch.float64),
        [1.0, 1e-46],
        3,
        0.5,
    )
