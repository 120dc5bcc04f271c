"""1-D regression data (x·sin x, Mauna Loa CO₂) and the rotated digit."""

from __future__ import annotations

import pytest
import torch

from ebm.data import digits, mauna_loa_co2, rotate_images, rotated_digit, x_sin_x
from ebm.data.regression import _CO2_FILE


def test_x_sin_x_is_the_notes_toy():
    state = torch.get_rng_state()
    x, y = x_sin_x(generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    assert x.shape == y.shape == (20, 1)
    assert x.min() >= -5 and x.max() <= 5 and x.max() - x.min() > 6
    torch.testing.assert_close(y, x * torch.sin(x))
    again = x_sin_x(generator=torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(x_sin_x(generator=torch.Generator().manual_seed(3))[0], again)
    assert not torch.equal(again, x)
    x_noisy, y_noisy = x_sin_x(n=500, noise=0.5, generator=torch.Generator().manual_seed(1))
    assert (y_noisy - x_noisy * torch.sin(x_noisy)).std().item() == pytest.approx(0.5, rel=0.1)


def test_mauna_loa_split_and_normalisation():
    data = mauna_loa_co2(split_year=1990.0, every=2)
    assert 150 < len(data.x_train) < 250  # "about 200 points", as in the notes
    assert data.x_train.max() < data.x_test.min()  # the held-out part is an extrapolation
    assert abs(data.x_train.mean().item()) < 1e-5 and data.x_train.std().item() == pytest.approx(
        1.0
    )
    assert abs(data.y_train.mean().item()) < 1e-5 and data.y_train.std().item() == pytest.approx(
        1.0
    )
    assert data.ppmv(data.y_test).mean() > data.ppmv(data.y_train).mean() + 20  # CO₂ keeps rising
    years = data.years(data.x_train)
    assert 1958 < years.min() < 1959 and years.max() < 1990
    assert 310 < data.ppmv(data.y_train).min() < 320  # ppmv at Mauna Loa in 1958-59


def test_co2_file_names_its_provenance():
    header = _CO2_FILE.read_text().splitlines()[:8]
    text = " ".join(header)
    assert "Keeling" in text and "Scripps" in text and "statsmodels" in text


def test_rotations():
    images, labels = digits("test")
    seq, angles, label = rotated_digit(index=3, angles=torch.tensor([0.0, 90.0, 180.0]))
    assert seq.shape == (3, 1, 8, 8) and label == int(labels[3])
    torch.testing.assert_close(seq[0], images[3], atol=1e-5, rtol=0)
    # 90° anticlockwise as displayed (row 0 at the top) is torch.rot90 over (H, W)
    torch.testing.assert_close(seq[1], torch.rot90(images[3], 1, (-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(seq[2], torch.rot90(images[3], 2, (-2, -1)), atol=1e-5, rtol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="n"):
        x_sin_x(n=0)
    with pytest.raises(ValueError, match="split_year"):
        mauna_loa_co2(split_year=2050.0)
    with pytest.raises(ValueError, match="every"):
        mauna_loa_co2(every=0)
    with pytest.raises(ValueError, match="index"):
        rotated_digit(index=10_000)
    with pytest.raises(ValueError, match="angles"):
        rotate_images(torch.zeros(2, 1, 8, 8), torch.zeros(3))
    # empty batches are refused by name (rotate_images used to fail inside affine_grid)
    with pytest.raises(ValueError, match=r"^images must hold at least one"):
        rotate_images(torch.zeros(0, 1, 8, 8), torch.zeros(0))
    with pytest.raises(ValueError, match=r"^angles must hold at least one"):
        rotated_digit(angles=[])


def test_scales_and_ranges_are_validated_by_name():
    for kwargs, name in (
        ({"noise": float("nan")}, "noise"),
        ({"noise": float("inf")}, "noise"),
        ({"noise": "0.1"}, "noise"),
        ({"generator": 3}, r"generator must be a torch.Generator or None, got 3 \(for a seed"),
        ({"low": float("-inf")}, "low"),
        ({"high": float("inf")}, "high"),
        ({"high": "5"}, "high"),
        ({"n": 2.5}, "n must"),
    ):
        with pytest.raises(ValueError, match=name):
            x_sin_x(**kwargs)
    with pytest.raises(ValueError, match="split_year"):
        mauna_loa_co2(split_year="1990")
    with pytest.raises(ValueError, match="split_year"):
        mauna_loa_co2(split_year=float("nan"))


def test_rotations_take_finite_array_likes():
    images = digits("test")[0][:2]
    with pytest.raises(ValueError, match="angles contains"):
        rotate_images(images, torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="images contains"):
        rotate_images(images * float("inf"), torch.zeros(2))
    with pytest.raises(ValueError, match="angles contains"):
        rotated_digit(angles=[0.0, float("nan")])
    with pytest.raises(ValueError, match="index"):
        rotated_digit(index=2.5)
    # integer images (e.g. uint8 pixels) and list angles: promoted, not rejected
    pixels = (images * 16).round().to(torch.uint8)
    expected = rotate_images(pixels.float(), torch.tensor([90.0, 180.0]))
    torch.testing.assert_close(rotate_images(pixels, [90, 180]), expected)
