"""ebm.sampling.grid_sample / grid_log_partition: exact draws and midpoint-rule log Z on a grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from ebm.energies import MLPEnergy
from ebm.sampling import grid_log_partition, grid_sample


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian(sigma, mu):
    """E = ½ Σ_k ((x_k − μ_k)/σ_k)², (B, d) -> (B,): Z = (2π)^(d/2) Π σ_k on all of R^d."""
    sigma, mu = torch.tensor(sigma), torch.tensor(mu)
    return lambda x: 0.5 * ((x - mu.to(x)) / sigma.to(x)).square().sum(1)


def mixture(weights, means, sigma):
    """E = −log Σ_j w_j N(x; m_j, σ² I), (B, d) -> (B,)."""
    w, m = torch.tensor(weights, dtype=torch.float64), torch.tensor(means, dtype=torch.float64)

    def energy(x):
        sq = torch.cdist(x.double(), m).square()
        d = x.shape[1]
        log_n = -sq / (2 * sigma**2) - 0.5 * d * math.log(2 * math.pi * sigma**2)
        return -torch.logsumexp(log_n + w.log(), 1)

    return energy


@pytest.mark.parametrize("d", [1, 2])
def test_log_z_of_a_gaussian_is_the_closed_form_within_the_midpoint_bound(d):
    sigma, mu = [0.7, 1.3][:d], [0.4, -1.0][:d]
    low = [m - 7 * s for m, s in zip(mu, sigma)]
    high = [m + 6 * s for m, s in zip(mu, sigma)]  # not centred on the mode
    cells = 60 if d == 2 else 400
    log_z = grid_log_partition(gaussian(sigma, mu), low, high, cells=cells)
    exact = sum(0.5 * math.log(2 * math.pi * s**2) for s in sigma)
    # per dimension, Z_k = σ_k√(2π): the composite midpoint rule errs by at most
    # (b − a)·h²·max|f''|/24 with max|f''| = 1/σ² (at the mode), plus the mass outside the box,
    # at most erfc(6/√2)·Z_k; relative errors add over the product of the d factors
    rel = 0.0
    for lo, hi, s in zip(low, high, sigma):
        h = (hi - lo) / cells
        rel += (hi - lo) * h**2 / (24 * s**2) / (s * math.sqrt(2 * math.pi))
        rel += math.erfc(6 / math.sqrt(2))
    assert log_z.dtype == torch.float64 and log_z.shape == ()
    assert abs(log_z.item() - exact) <= rel / (1 - rel)
    # for a Gaussian on a wide box the rule is far better than that bound (Poisson summation):
    # float32 energies leave about 1e-6
    assert log_z.item() == pytest.approx(exact, abs=1e-5)


def test_a_flat_energy_gives_uniform_draws_and_the_log_volume():
    def flat(x):
        return torch.zeros(x.shape[0], 1)  # (B, 1) is accepted as (B,)

    low, high = [-1.0, 2.0], [3.0, 2.5]
    log_z = grid_log_partition(flat, low, high, cells=50)
    assert log_z.item() == pytest.approx(math.log(4.0 * 0.5), abs=1e-12)
    x = grid_sample(flat, 5000, low, high, cells=50, generator=gen(1))
    assert x.shape == (5000, 2) and x.dtype == torch.get_default_dtype()
    for k in range(2):
        assert float(x[:, k].min()) >= low[k] and float(x[:, k].max()) <= high[k]
        uniform = stats.uniform(loc=low[k], scale=high[k] - low[k])
        assert stats.kstest(x[:, k].double().numpy(), uniform.cdf).pvalue > 1e-3


def test_1d_mixture_draws_have_its_mode_weights_and_moments():
    energy = mixture([0.3, 0.7], [[-2.0], [2.0]], 0.4)
    n = 20000
    x = grid_sample(energy, n, -6.0, 6.0, dim=1, cells=600, generator=gen(2))[:, 0].double()
    left = (x < 0).double().mean().item()
    assert left == pytest.approx(0.3, abs=4 * math.sqrt(0.3 * 0.7 / n))
    # mean 0.8, variance σ² + 4 − 0.8² = 3.52 (the cells' widths add h²/12 = 1e-4)
    assert x.mean().item() == pytest.approx(0.8, abs=4 * math.sqrt(3.52 / n))
    assert x.var().item() == pytest.approx(3.52, rel=0.05)
    assert grid_log_partition(energy, -6.0, 6.0, dim=1, cells=600).item() == pytest.approx(
        0.0, abs=1e-6
    )  # a normalised density


def test_2d_mixture_draws_have_its_mode_weights_and_component_moments():
    means = [[-1.5, 0.0], [1.5, 1.0]]
    energy = mixture([0.25, 0.75], means, 0.3)
    n = 20000
    x = grid_sample(energy, n, -4.0, 4.0, dim=2, cells=200, generator=gen(3)).double()
    right = x[:, 0] > 0
    assert right.double().mean().item() == pytest.approx(0.75, abs=4 * math.sqrt(0.1875 / n))
    for part, m in ((x[~right], means[0]), (x[right], means[1])):
        se = 0.3 / math.sqrt(part.shape[0])
        assert part.mean(0).tolist() == pytest.approx(m, abs=4 * se)
        assert part.std(0).tolist() == pytest.approx([0.3, 0.3], rel=0.05)


def test_chunking_and_the_device_argument_do_not_change_the_results():
    energy = mixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], 0.5)
    kw = dict(low=-3.0, high=3.0, dim=2, cells=40)
    whole = grid_sample(energy, 500, generator=gen(4), chunk_size=1 << 20, **kw)
    for chunk in (1, 7, 333):
        assert torch.equal(
            grid_sample(energy, 500, generator=gen(4), chunk_size=chunk, **kw), whole
        )
        assert torch.equal(
            grid_log_partition(energy, chunk_size=chunk, **kw),
            grid_log_partition(energy, chunk_size=1 << 20, **kw),
        )
    assert torch.equal(grid_sample(energy, 500, generator=gen(4), device="cpu", **kw), whole)


def test_a_seeded_generator_reproduces_the_draws():
    energy = gaussian([1.0], [0.0])
    a = grid_sample(energy, 100, -4.0, 4.0, dim=1, generator=gen(5))
    assert torch.equal(a, grid_sample(energy, 100, -4.0, 4.0, dim=1, generator=gen(5)))
    assert not torch.equal(a, grid_sample(energy, 100, -4.0, 4.0, dim=1, generator=gen(6)))
    assert grid_sample(energy, 3, -4.0, 4.0, dim=1).shape == (3, 1)  # generator=None: global RNG


def test_a_module_is_evaluated_in_its_dtype_without_gradients():
    energy = MLPEnergy(2, hidden=(8,)).double()
    x = grid_sample(energy, 10, -1.0, 1.0, dim=2, cells=8, generator=gen(0))
    assert x.dtype == torch.float64 and not x.requires_grad
    assert not grid_log_partition(energy, -1.0, 1.0, dim=2, cells=8).requires_grad


def _ebm_2d_exact_samples(energy, half_width, n, seed, cells=400):
    """recipes/ebm_2d.py's own exact sampler before it called grid_sample (commit 6628533)."""
    width = 2 * half_width / cells
    centres = -half_width + (torch.arange(cells) + 0.5) * width
    grid = torch.cartesian_prod(centres, centres)
    device = next(energy.parameters()).device
    with torch.no_grad():
        E = torch.cat([energy(part.to(device)).cpu() for part in grid.split(16384)])
    g = torch.Generator().manual_seed(seed)
    cell = torch.multinomial(torch.softmax(-E.double(), 0), n, replacement=True, generator=g)
    return grid[cell] + (torch.rand(n, 2, generator=g) - 0.5) * width


@pytest.mark.parametrize("half_width", [2.5, 4.5])
def test_the_ebm_2d_recipes_draws_are_unchanged_bit_for_bit(half_width):
    # its committed figures/ebm_2d.json numbers come from these draws: the same cells, float32
    # centres, float64 softmax, and the same multinomial-then-rand order on the generator
    energy = MLPEnergy(2, hidden=(128, 128), activation=nn.SiLU)
    g = gen(7)
    with torch.no_grad():
        for p in energy.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    old = _ebm_2d_exact_samples(energy, half_width, 3000, 3)
    new = grid_sample(energy, 3000, -half_width, half_width, dim=2, cells=400, generator=gen(3))
    assert torch.equal(old, new)


def test_no_distribution_is_refused():
    def nan_energy(x):
        return torch.where(x[:, 0] > 0, float("nan"), 0.0)

    def well(x):
        return torch.where(x[:, 0].abs() < 0.01, -float("inf"), 0.0)

    def wall(x):
        return torch.full((x.shape[0],), float("inf"))

    with pytest.raises(ValueError, match="energy returned NaN"):
        grid_log_partition(nan_energy, -1.0, 1.0, dim=1)
    with pytest.raises(ValueError, match="energy returned NaN"):
        grid_sample(nan_energy, 5, -1.0, 1.0, dim=1)
    with pytest.raises(ValueError, match="energy returned -inf"):
        grid_sample(well, 5, -1.0, 1.0, dim=1, cells=101)
    with pytest.raises(ValueError, match="energy returned \\+inf at every"):
        grid_sample(wall, 5, -1.0, 1.0, dim=1)
    # the limits of log Z: infinite mass, no mass
    assert grid_log_partition(well, -1.0, 1.0, dim=1, cells=101).item() == math.inf
    assert grid_log_partition(wall, -1.0, 1.0, dim=1).item() == -math.inf


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(energy=3), "energy"),
        (dict(energy=lambda x: x), "energy"),  # (B, 2) energies: not one value per sample
        (dict(n=0), "n"),
        (dict(n=2.5), "n"),
        (dict(low=float("nan")), "low"),
        (dict(low=[0.0, "a"]), "low"),
        (dict(high=-2.0), "low must be < high"),
        (dict(high=[2.0, -3.0]), "low must be < high in dimension 1"),
        (dict(low=[-1.0, -1.0, -1.0]), "disagree"),
        (dict(dim=None), "dim must be given"),
        (dict(dim=0), "dim"),
        (dict(cells=0), "cells"),
        (dict(cells=5000), "cells"),  # 5000² > 2^24
        (dict(chunk_size=True), "chunk_size"),
        (dict(device=7), "device"),
        (dict(generator=3), "generator"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, name):
    call = dict(energy=gaussian([1.0, 1.0], [0.0, 0.0]), n=4, low=-1.0, high=1.0, dim=2, cells=4)
    call.update(kwargs)
    with pytest.raises(ValueError, match=name):
        grid_sample(**call)
    if "n" not in kwargs and "generator" not in kwargs:
        call.pop("n"), call.pop("generator", None)
        with pytest.raises(ValueError, match=name):
            grid_log_partition(**call)


def test_the_box_may_be_numpy_or_tensors_and_per_dimension():
    energy = gaussian([1.0, 2.0], [0.0, 0.0])
    reference = grid_log_partition(energy, -8.0, 8.0, dim=2, cells=50)
    for low, high in (
        (np.array(-8.0), torch.tensor(8.0)),
        (np.array([-8.0, -8.0]), torch.tensor([8.0, 8.0])),
        ([-8, -8], (8, 8)),
    ):
        dim = None if np.ndim(low) else 2
        assert torch.equal(grid_log_partition(energy, low, high, dim=dim, cells=50), reference)


def test_cells_per_dimension_and_additivity_over_adjacent_boxes():
    energy = gaussian([0.5, 1.5], [0.2, -0.3])
    exact = math.log(2 * math.pi * 0.5 * 1.5)
    log_z = grid_log_partition(energy, [-4.0, -10.0], [4.0, 10.0], cells=(400, 100))
    assert log_z.item() == pytest.approx(exact, abs=1e-5)
    # Z over a box is the sum over boxes that tile it (cells of the same size)
    left = grid_log_partition(energy, [-4.0, -10.0], [1.0, 10.0], cells=(250, 100))
    right = grid_log_partition(energy, [1.0, -10.0], [4.0, 10.0], cells=(150, 100))
    assert torch.logaddexp(left, right).item() == pytest.approx(log_z.item(), abs=1e-6)
    x = grid_sample(energy, 4000, [-4.0, -10.0], [4.0, 10.0], cells=(400, 100), generator=gen(8))
    assert x.std(0).tolist() == pytest.approx([0.5, 1.5], rel=0.06)
    with pytest.raises(ValueError, match="cells must be an int or 2 ints"):
        grid_log_partition(energy, -1.0, 1.0, dim=2, cells=(3, 3, 3))
    with pytest.raises(ValueError, match="cells"):
        grid_log_partition(energy, -1.0, 1.0, dim=2, cells=(3, 0))


@pytest.mark.parametrize("device", ["meta", "cuda:7", 3])
def test_unavailable_or_unknown_devices_are_refused_by_name(device):
    if isinstance(device, str) and device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the device")
    with pytest.raises(ValueError, match="device"):
        grid_log_partition(lambda x: 0.5 * x.square().sum(1), -4.0, 4.0, dim=1, device=device)
