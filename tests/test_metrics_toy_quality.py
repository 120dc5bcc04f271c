import math

import numpy as np
import pytest
import scipy.spatial
import torch

from ebm.data import checkerboard, ring_of_gaussians
from ebm.data.toy2d import ring_centers
from ebm.metrics import checkerboard_occupancy, mode_weights, near_data_fraction, nearest_distance


def _cell_centres():
    """Centres of the 16 cells of the [−4, 4]² board, and whether each is dark (i + j even)."""
    ij = [(i, j) for i in range(4) for j in range(4)]
    centres = torch.tensor([(-3.0 + 2 * i, -3.0 + 2 * j) for i, j in ij])
    return centres, [(i + j) % 2 == 0 for i, j in ij]


def test_checkerboard_occupancy_of_one_point_per_cell():
    centres, _ = _cell_centres()
    inside, shares = checkerboard_occupancy(centres)
    assert inside.item() == pytest.approx(0.5)  # 8 of 16 cells are dark
    assert shares.shape == (8,)
    assert torch.allclose(shares, torch.full((8,), 1 / 16))


def test_checkerboard_occupancy_counts_each_square_in_row_major_order():
    # dark squares in order: (0,0) (0,2) (1,1) (1,3) (2,0) (2,2) (3,1) (3,3); put k+1 points in the k-th
    dark = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    points = [(-3.0 + 2 * i, -3.0 + 2 * j) for k, (i, j) in enumerate(dark) for _ in range(k + 1)]
    points += [(-3.0 + 2 * 0, -3.0 + 2 * 1)] * 4  # light square (0, 1)
    points += [(4.5, 0.0), (0.0, -4.01), (100.0, 100.0)]  # off the board
    inside, shares = checkerboard_occupancy(points)
    n = len(points)  # 36 + 4 + 3
    assert shares.tolist() == pytest.approx([(k + 1) / n for k in range(8)])
    assert inside.item() == pytest.approx(36 / n)
    assert shares.sum().item() == pytest.approx(inside.item())


def test_checkerboard_occupancy_closed_edges_and_corners():
    # the board's corners (−4, −4) and (4, 4) lie on dark squares (0, 0) and (3, 3); (4, −4) on
    # light square (3, 0); a point on the line x₁ = −2 between (0, 0) and (1, 0) goes to (1, 0), light
    inside, shares = checkerboard_occupancy([[-4.0, -4.0], [4.0, 4.0], [4.0, -4.0], [-2.0, -3.0]])
    assert inside.item() == pytest.approx(0.5)
    assert shares[0].item() == pytest.approx(0.25) and shares[-1].item() == pytest.approx(0.25)


def test_checkerboard_occupancy_of_the_data_generator():
    x = checkerboard(40000, generator=torch.Generator().manual_seed(0))
    inside, shares = checkerboard_occupancy(x)
    assert inside.item() == 1.0  # the generator draws only on dark squares
    # binomial(40000, 1/8): sd 0.0017, so 0.01 is ~6 sd
    assert (shares - 0.125).abs().max().item() < 0.01


def test_checkerboard_occupancy_other_boards():
    # a 2×2 board on [0, 1]²: dark cells (0, 0) and (1, 1)
    inside, shares = checkerboard_occupancy(
        [[0.25, 0.25], [0.75, 0.75], [0.75, 0.25], [0.7, 0.9]], n_cells=2, low=0.0, high=1.0
    )
    assert inside.item() == pytest.approx(0.75)
    assert shares.tolist() == pytest.approx([0.25, 0.5])


def test_checkerboard_occupancy_promotes_integers_and_keeps_dtype():
    inside, shares = checkerboard_occupancy(torch.tensor([[-3, -3], [-3, -1]]))
    assert inside.dtype == torch.get_default_dtype() and inside.item() == pytest.approx(0.5)
    inside64, _ = checkerboard_occupancy(torch.tensor([[-3.0, -3.0]], dtype=torch.float64))
    assert inside64.dtype == torch.float64


def test_mode_weights_at_the_centres_and_at_known_distances():
    centers = ring_centers(8, 2.0)
    shares, within = mode_weights(centers, centers, std=0.1)
    assert torch.allclose(shares, torch.full((8,), 1 / 8)) and within.item() == 1.0
    # two points on mode 0 at radius 2 ± 0.29 (inside 3σ), two at 2 ± 0.31 (outside)
    pts = torch.tensor([[2.29, 0.0], [1.71, 0.0], [2.31, 0.0], [1.69, 0.0]])
    shares, within = mode_weights(pts, centers, std=0.1)
    assert shares[0].item() == 1.0 and shares[1:].sum().item() == 0.0
    assert within.item() == pytest.approx(0.5)
    _, within = mode_weights(pts, centers, std=0.1, n_std=3.2)
    assert within.item() == 1.0


def test_mode_weights_of_a_gaussian_mixture_match_the_chi_distribution():
    # an isotropic 2-D Gaussian lies within r·σ of its mean with probability 1 − exp(−r²/2)
    x = ring_of_gaussians(40000, noise=0.1, generator=torch.Generator().manual_seed(3))
    shares, within = mode_weights(x, ring_centers(8, 2.0), std=0.1)
    assert within.item() == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # sd 0.0005
    _, within2 = mode_weights(x, ring_centers(8, 2.0), std=0.1, n_std=2.0)
    assert within2.item() == pytest.approx(1 - math.exp(-2.0), abs=0.006)  # sd 0.0017
    assert (shares - 0.125).abs().max().item() < 0.01
    assert shares.sum().item() == pytest.approx(1.0)


def test_nearest_distance_matches_scipy_kdtree_in_any_chunking():
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(301, 3, generator=g, dtype=torch.float64), torch.randn(77, 3, generator=g)
    expected = scipy.spatial.cKDTree(ref.double().numpy()).query(x.numpy())[0]
    for chunk in (1, 7, 1024):
        d = nearest_distance(x, ref, chunk=chunk)
        assert d.dtype == torch.float64
        np.testing.assert_allclose(d.numpy(), expected, rtol=1e-6)


def test_near_data_fraction_by_hand():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor(
        [[0.3, 0.4], [10.0, 0.49], [5.0, 0.0], [0.0, 0.51]]
    )  # 0.5, 0.49, 5, 0.51
    assert near_data_fraction(samples, ref, radius=0.5).item() == pytest.approx(0.5)
    assert near_data_fraction(samples, ref, radius=0.52).item() == pytest.approx(0.75)
    assert near_data_fraction(samples, ref, radius=5.0).item() == 1.0
    assert near_data_fraction(samples.tolist(), ref.numpy(), radius=0.1).item() == 0.0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: checkerboard_occupancy(torch.tensor([[0.0, float("nan")]])), "samples"),
        (lambda: checkerboard_occupancy(torch.zeros(3, 3)), "samples"),
        (lambda: checkerboard_occupancy(torch.zeros(0, 2)), "samples"),
        (lambda: checkerboard_occupancy(torch.zeros(3, 2), n_cells=0), "n_cells"),
        (lambda: checkerboard_occupancy(torch.zeros(3, 2), low=1.0, high=1.0), "low"),
        (lambda: checkerboard_occupancy(torch.zeros(3, 2), high=float("inf")), "high"),
        (lambda: checkerboard_occupancy("points"), "samples"),
        (lambda: mode_weights(torch.zeros(3, 2), torch.zeros(2, 3), std=0.1), "centers"),
        (lambda: mode_weights(torch.zeros(3, 2), torch.zeros(2, 2), std=0.0), "std"),
        (lambda: mode_weights(torch.zeros(3, 2), torch.zeros(2, 2), std=float("nan")), "std"),
        (lambda: mode_weights(torch.zeros(3, 2), torch.zeros(2, 2), std=0.1, n_std=-1), "n_std"),
        (lambda: mode_weights(torch.full((3, 2), float("inf")), torch.zeros(2, 2), 0.1), "samples"),
        (lambda: near_data_fraction(torch.zeros(3, 2), torch.zeros(4, 2), radius=-0.1), "radius"),
        (lambda: near_data_fraction(torch.zeros(3, 2), torch.zeros(4, 3), radius=0.1), "reference"),
        (lambda: near_data_fraction(torch.zeros(3, 2), [[float("nan"), 0]], 0.1), "reference"),
        (lambda: nearest_distance(torch.zeros(3, 2), torch.zeros(4, 2), chunk=0), "chunk"),
        (lambda: near_data_fraction(torch.zeros(3, 2), torch.zeros(4, 2), radius=True), "radius"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
