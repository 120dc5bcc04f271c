"""Smoke tests: the sampling recipes run in quick mode and write their figures and numbers."""

from __future__ import annotations

import json

import numpy as np


def test_ebm_2d(run_recipe):
    out = run_recipe("ebm_2d")
    results = json.loads((out / "ebm_2d.json").read_text())
    assert set(results["datasets"]) == {"ring-8", "two moons", "pinwheel", "checkerboard"}
    assert (out / "ebm_2d.png").exists()


def test_diffusion_1d(run_recipe):
    out = run_recipe("diffusion_1d")
    results = json.loads((out / "diffusion_1d.json").read_text())
    assert results["alpha_bar_T"] < 1e-3 < 0.5 < results["warwick_alpha_bar_T"]
    # even the quick model puts most of the mass at −0.75
    assert all(0.5 < v < 0.9 for v in results["fraction_near_-0.75"].values())
    assert (out / "diffusion_1d.png").exists() and (out / "diffusion_1d_processes.png").exists()
    with np.load(out / "diffusion_1d_samples.npz") as saved:
        assert set(saved.files) == {"data", "ancestral", "ode", "t", "forward", "reverse"}
        # the saved samples give back the reported fractions
        for name in ("ancestral", "ode"):
            near = float((np.abs(saved[name] + 0.75) < 0.25).mean())
            assert abs(near - results["fraction_near_-0.75"][name]) < 1e-6
        assert saved["forward"].shape == saved["reverse"].shape == (len(saved["t"]), 1000)


def test_cnf_2d(run_recipe):
    out = run_recipe("cnf_2d")
    results = json.loads((out / "cnf_2d.json").read_text())
    # even 40 quick steps beat the best Gaussian fit to two moons (−1.89 nats at this noise)
    assert results["test_log_likelihood"] > -1.89
    assert (out / "cnf_2d.png").exists()
    with np.load(out / "cnf_2d_samples.npz") as saved:
        assert saved["samples"].shape == (1000, 2) and saved["test_data"].shape == (500, 2)
