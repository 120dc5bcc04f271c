"""ebm/plot.py: figure helpers draw what they are given."""

import matplotlib.pyplot as plt
import pytest
import torch

from ebm.energies import CircleEnergy
from ebm.plot import energy_landscape, evaluate_on_grid, grid_points, image_grid, uncertainty_band


def test_grid_points_cover_the_box_in_xy_order():
    points, X, Y = grid_points((-1, 1), (0, 2), n=3)
    assert points.shape == (9, 2)
    assert torch.equal(points[0], torch.tensor([-1.0, 0.0])) and torch.equal(
        points[-1], torch.tensor([1.0, 2.0])
    )
    # row index follows y, column index follows x (imshow's convention)
    assert torch.equal(X[0], torch.tensor([-1.0, 0.0, 1.0])) and torch.equal(
        Y[:, 0], torch.tensor([0.0, 1.0, 2.0])
    )


def test_evaluate_on_grid_matches_the_energy_and_chunks():
    E, X, Y = evaluate_on_grid(CircleEnergy(1.0), (-2, 2), (-2, 2), n=41, chunk=100)
    assert torch.allclose(E, (X**2 + Y**2 - 1) ** 2)


def test_energy_landscape_and_band_draw():
    fig, (a, b) = plt.subplots(1, 2)
    image = energy_landscape(a, CircleEnergy(1.0), n=20, data=torch.zeros(3, 2), levels=3)
    assert image.get_array().shape == (20, 20)
    line = uncertainty_band(b, torch.tensor([2.0, 0.0, 1.0]), torch.zeros(3), torch.ones(3))
    assert list(line.get_xdata()) == [0.0, 1.0, 2.0]
    plt.close(fig)


def test_image_grid_tiles_and_refuses_colour():
    fig, ax = plt.subplots()
    canvas = image_grid(ax, torch.rand(5, 1, 8, 8), nrow=3, pad=1)
    assert canvas.shape == (2 * 9 + 1, 3 * 9 + 1)
    with pytest.raises(ValueError, match="greyscale"):
        image_grid(ax, torch.rand(2, 3, 8, 8), nrow=2)
    plt.close(fig)
