"""ebm/plot.py: figure helpers draw what they are given."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from ebm.energies import CircleEnergy
from ebm.plot import (
    ENERGY_CMAP,
    add_colorbar,
    energy_landscape,
    evaluate_on_grid,
    grid_points,
    histogram_energy,
    image_grid,
    mode_coverage_scatter,
    uncertainty_band,
    use_style,
)


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


def test_energy_landscape_titles_its_colourbar_and_shares_a_scale():
    from matplotlib.colors import to_rgba

    fig, (a, b) = plt.subplots(1, 2)
    image = energy_landscape(a, CircleEnergy(1.0), n=20, vmin=0.0, vmax=2.0)
    # E = (x² + y² − 1)² reaches 289 at the corners: beyond vmax, and the colourbar says so
    assert image.get_clim() == (0.0, 2.0)
    bar = image.colorbar
    assert bar.ax.get_ylabel() == "energy E(y)" and bar.extend == "max"
    assert (a.get_xlabel(), a.get_ylabel()) == ("y₁", "y₂")
    # low energy = dark: the minimum maps to the darker end of the colour map
    low, high = (to_rgba(image.cmap(image.norm(v))) for v in (0.0, 2.0))
    assert sum(low[:3]) < sum(high[:3])
    image = energy_landscape(b, CircleEnergy(1.0), n=20, log=True, label="my energy")
    assert image.colorbar.ax.get_ylabel() == "my energy" and image.colorbar.extend == "neither"
    plt.close(fig)


def test_add_colorbar_refuses_an_untitled_bar():
    fig, ax = plt.subplots()
    image = ax.imshow(torch.rand(3, 3).numpy())
    with pytest.raises(ValueError, match="label"):
        add_colorbar(ax, image, "")
    bar = add_colorbar(ax, image, "density")
    # as tall as its axes, beside it
    assert bar.ax.get_position().height == pytest.approx(ax.get_position().height)
    plt.close(fig)


def test_uncertainty_band_puts_the_band_in_the_legend():
    fig, ax = plt.subplots()
    x = torch.linspace(0, 1, 5)
    uncertainty_band(ax, x, x, torch.full((5,), 0.1), k=2.0, label="mean", band_label="± 2σ")
    _, labels = ax.get_legend_handles_labels()
    assert sorted(labels) == ["mean", "± 2σ"]
    band = ax.collections[0].get_paths()[0].vertices
    # the band spans mean ± 2σ: from −0.2 at x = 0 to 1.2 at x = 1
    assert band[:, 1].min() == pytest.approx(-0.2) and band[:, 1].max() == pytest.approx(1.2)
    plt.close(fig)


def test_mode_coverage_scatter_draws_hollow_circles_beneath_the_samples():
    from matplotlib.colors import to_rgba

    fig, ax = plt.subplots()
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    covered = torch.tensor([True, False, True])
    points = mode_coverage_scatter(ax, torch.zeros(10, 2), centers, covered, lim=2)
    rings = {c.get_label(): c for c in ax.collections if c is not points}
    assert set(rings) == {"mode covered", "mode missed"}
    assert (
        len(rings["mode covered"].get_offsets()) == 2
        and len(rings["mode missed"].get_offsets()) == 1
    )
    for ring in rings.values():
        assert ring.get_facecolor().size == 0 or ring.get_facecolor()[0][3] == 0  # hollow
        assert ring.get_zorder() < points.get_zorder()  # beneath the samples
    assert tuple(rings["mode missed"].get_edgecolor()[0]) == to_rgba("C3")
    assert ax.get_xlim() == (-2, 2) and ax.get_aspect() == 1.0
    plt.close(fig)


def test_histogram_energy_is_minus_log_density_and_skips_thin_bins():
    fig, ax = plt.subplots()
    g = torch.Generator().manual_seed(0)
    # 70 % at −1, 30 % at +1, exactly: the wells' depths differ by ln(0.7/0.3)
    x = torch.cat([torch.full((700,), -1.0), torch.full((300,), 1.0), torch.rand(3, generator=g)])
    line = histogram_energy(ax, x, bins=8, limits=(-2.0, 2.0), min_count=5)
    energy = torch.tensor(line.get_ydata())
    width = 0.5
    assert energy[2].item() == pytest.approx(-math.log(700 / (1003 * width)), rel=1e-5)
    assert energy[6].item() == pytest.approx(-math.log(300 / (1003 * width)), rel=1e-5)
    assert (energy[6] - energy[2]).item() == pytest.approx(math.log(7 / 3), rel=1e-5)
    # the 3 uniform samples fall in bins below min_count: left out, not drawn from 3 counts
    assert torch.isnan(energy[[0, 1, 3, 4, 5, 7]]).all()
    plt.close(fig)


def test_use_style_sets_legible_fonts():
    import matplotlib

    with matplotlib.rc_context():
        use_style()
        assert matplotlib.rcParams["font.size"] >= 10
        assert matplotlib.rcParams["image.cmap"] == ENERGY_CMAP
