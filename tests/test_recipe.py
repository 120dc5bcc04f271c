"""ebm/recipe.py: the command line and outputs every recipe shares."""

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ebm.recipe import parse_args, save_figure, save_samples, write_results
from recipes.run_all import recipe_names


def test_parse_args_defaults_and_extras():
    args = parse_args("demo", [])
    assert (args.quick, args.device, args.seed, args.out) == (False, "auto", 0, Path("figures"))
    args = parse_args(
        "demo",
        ["--quick", "--epochs", "3"],
        add_arguments=lambda p: p.add_argument("--epochs", type=int, default=1),
    )
    assert args.quick and args.epochs == 3


def test_write_results_makes_everything_json(tmp_path):
    results = {"t": torch.tensor([1.5, 2.0]), "np": np.float32(0.25), "inf": math.inf, 3: (1, 2)}
    path = write_results(tmp_path / "sub", "demo", results)
    assert json.loads(path.read_text()) == {"t": [1.5, 2.0], "np": 0.25, "inf": "inf", "3": [1, 2]}
    assert not list(path.parent.glob("*.tmp"))


def test_save_figure_writes_png_and_closes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path, "demo")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_run_all_finds_recipes_but_not_itself():
    names = recipe_names()
    assert "run_all" not in names and all(not n.startswith("_") for n in names)


def test_save_samples_round_trips_tensors_and_arrays(tmp_path):
    a = torch.arange(6, dtype=torch.float32).reshape(3, 2).requires_grad_()
    b = np.array([[0.5, -1.0]])
    path = save_samples(tmp_path / "sub", "demo", {"ring-8": a, "two moons": b})
    assert path == tmp_path / "sub" / "demo_samples.npz"
    with np.load(path) as saved:
        assert sorted(saved.files) == ["ring-8", "two moons"]
        np.testing.assert_array_equal(saved["ring-8"], a.detach().numpy())
        assert saved["ring-8"].dtype == np.float32
        np.testing.assert_array_equal(saved["two moons"], b)
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "arrays", [{}, [1, 2], {"x": [1.0, 2.0]}, {"": np.zeros(2)}, {3: np.zeros(2)}]
)
def test_save_samples_rejects_what_it_cannot_save(tmp_path, arrays):
    with pytest.raises(ValueError, match="arrays"):
        save_samples(tmp_path, "demo", arrays)
    assert not list(tmp_path.iterdir())
