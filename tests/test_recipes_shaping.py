"""Smoke test of recipes/energy_shaping.py in --quick mode: the claims its JSON and samples carry."""

import json
import math

import numpy as np
import pytest
import torch

from ebm.data.toy2d import ring_centers
from ebm.metrics import mode_weights

METHODS = {"CD short-run", "PCD", "exact SM", "sliced SM", "denoising SM", "NCE"}


def test_energy_shaping(run_recipe):
    out = run_recipe("energy_shaping")
    assert (out / "energy_shaping.png").stat().st_size > 10_000
    r = json.loads((out / "energy_shaping.json").read_text())
    methods, truth, binary = r["methods_2d"], r["true_density_2d"], r["binary"]
    assert set(methods) == METHODS
    # the ring's own density puts all but ~1e-9 of its mass on the box [−3, 3]² (the outermost
    # mode's centre is 3 − 2 = 1 = 6.7σ from the edge): the box is wide enough for the reference
    assert abs(truth["log_mass_on_box"]) < 1e-3
    for name, m in methods.items():
        assert math.isfinite(m["test_log_likelihood"]), name
        assert 0.0 <= m["mass_outside_box"] <= 1.0, name
        # no model beats the data's own density on held-out points by more than sampling noise
        assert m["test_log_likelihood"] < truth["test_log_likelihood"] + 0.05, name
    with np.load(out / "energy_shaping_samples.npz") as saved:
        # the metrics in the JSON are those of the saved samples
        for name in METHODS:
            x = torch.from_numpy(saved[f"{name.replace(' ', '_')}__exact"])
            shares, within = mode_weights(x, ring_centers(8, 2.0), std=0.15, n_std=3.0)
            assert within.item() == pytest.approx(methods[name]["exact_samples"]["within_3sd"])
            assert shares.tolist() == pytest.approx(methods[name]["exact_samples"]["mode_shares"])
        # binary: the saved probabilities over the 1024 states are distributions, and the KL in
        # the JSON is theirs
        p_true = torch.from_numpy(saved["binary_p_true"])
        assert p_true.sum().item() == pytest.approx(1.0, abs=1e-9)
        for name in ("max likelihood", "ratio matching", "MPF"):
            p = torch.from_numpy(saved[f"binary_p_{name.replace(' ', '_')}"])
            assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
            kl = (p_true * (p_true.log() - p.log())).sum().item()
            assert kl == pytest.approx(binary[name]["kl_true_to_model"], rel=1e-4, abs=1e-6)
            assert kl > 0  # a Boltzmann machine cannot be the 3-prototype mixture exactly
    # on 1000 held-out vectors, the true distribution beats every fitted Boltzmann machine
    best = binary["true distribution"]["test_log_likelihood"]
    for name in ("max likelihood", "ratio matching", "MPF"):
        assert binary[name]["test_log_likelihood"] < best, name
