"""The committed ebm_2d runs (figures/ebm_2d*.json, *_samples.npz) say what their samples show.

Each JSON's sharp metrics are recomputed here from the samples saved beside it, with the
recipe's definitions (ebm.metrics.toy_quality) and the targets of the recipe's docstring, so a
figure re-run without its numbers, or numbers edited by hand, fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ebm.data import pinwheel, two_moons
from ebm.data.toy2d import ring_centers
from ebm.metrics import checkerboard_occupancy, mode_weights, near_data_fraction

FIGURES = Path(__file__).resolve().parents[1] / "figures"
RUNS = sorted(FIGURES.glob("ebm_2d*.json"))
NEAR = {  # the recipe's reference draws: 20 000 fresh points, seed + 100; radius 3× the noise
    "two-moons": (
        lambda seed: two_moons(
            20000, noise=0.05, generator=torch.Generator().manual_seed(seed + 100)
        ),
        0.15,
    ),
    "pinwheel": (
        lambda seed: pinwheel(20000, generator=torch.Generator().manual_seed(seed + 100)),
        0.6,
    ),
}


def test_the_figure_and_two_more_seeds_are_committed():
    names = [p.stem for p in RUNS]
    assert {"ebm_2d", "ebm_2d_seed1", "ebm_2d_seed2"} <= set(names)
    for path in RUNS:
        results = json.loads(path.read_text())
        assert results["method"] == ("finetune" if "finetune" in path.stem else "jumps")
        assert results["seed"] == (int(path.stem[-1]) if "seed" in path.stem else 0)


def test_the_figure_meets_every_target_and_so_does_the_energy_itself():
    results = json.loads((FIGURES / "ebm_2d.json").read_text())
    assert results["seed"] == 0 and results["langevin_steps_from_noise"] == 1000
    assert results["all_targets_met"]
    assert all(r["energy_itself"]["target_met"] for r in results["datasets"].values())


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.stem)
def test_saved_samples_give_the_reported_numbers(run):
    results = json.loads(run.read_text())
    seed = results["seed"]
    with np.load(run.with_name(run.stem + "_samples.npz")) as saved:
        samples = {name: torch.from_numpy(saved[name]) for name in saved.files}
    assert set(samples) == {"ring-8", "two-moons", "pinwheel", "checkerboard"}
    met = {}
    for name, x in samples.items():
        r = results["datasets"][name]
        assert x.shape == (results["n_samples"], 2)
        if name == "checkerboard":
            inside, shares = checkerboard_occupancy(x)
            assert float(inside) == pytest.approx(r["inside_squares"], abs=1e-6)
            assert shares.tolist() == pytest.approx(r["square_shares"], abs=1e-6)
            met[name] = float(inside) >= 0.95 and bool(((shares - 0.125).abs() <= 0.025).all())
        elif name == "ring-8":
            shares, within = mode_weights(x, ring_centers(8, 2.0), std=0.1, n_std=3.0)
            assert float(within) == pytest.approx(r["within_3sd"], abs=1e-6)
            assert shares.tolist() == pytest.approx(r["mode_shares"], abs=1e-6)
            met[name] = float(within) >= 0.95 and bool(((shares - 0.125).abs() <= 0.025).all())
        else:
            make, radius = NEAR[name]
            near = float(near_data_fraction(x, make(seed), radius=radius))
            assert near == pytest.approx(r["near_data"], abs=1e-6)
            met[name] = near >= 0.95
        assert r["target_met"] == met[name], name
    assert results["all_targets_met"] == all(met.values())
