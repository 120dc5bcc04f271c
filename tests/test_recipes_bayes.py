"""Smoke runs of the MC dropout recipes in --quick mode, checking the numbers they report."""

from __future__ import annotations

import json


def test_mc_dropout_regression_recipe(run_recipe):
    out = run_recipe("mc_dropout_regression")
    assert (out / "mc_dropout_regression.png").stat().st_size > 10_000
    results = json.loads((out / "mc_dropout_regression.json").read_text())
    assert results["eval_mode_spread"] == 0.0
    for method in ("mc_dropout_tanh", "mc_dropout_relu", "gp", "svi_bnn", "deep_ensemble"):
        assert results[f"{method}_crps_in_range"] > 0
        assert isinstance(results[f"{method}_nll_in_range"], float)
    assert results["mc_dropout_relu_std_far_over_in_range"] >= 5


def test_mc_dropout_co2_recipe(run_recipe):
    out = run_recipe("mc_dropout_co2")
    assert (out / "mc_dropout_co2.png").stat().st_size > 10_000
    results = json.loads((out / "mc_dropout_co2.json").read_text())
    # ReLU MC dropout is more uncertain over the held-out years than over the training years
    assert (
        results["mc_dropout_relu_std_extrapolation_mean"]
        > results["mc_dropout_relu_std_train_mean"]
    )
    assert 0 <= results["gp_coverage95_extrapolation"] <= 1


def test_mc_dropout_classification_recipe(run_recipe):
    out = run_recipe("mc_dropout_classification")
    assert (out / "mc_dropout_classification.png").stat().st_size > 10_000
    results = json.loads((out / "mc_dropout_classification.json").read_text())
    assert results["test_accuracy_mc"] > 0.5  # well above chance (0.1) even after 4 epochs
    assert len(results["rotation_entropy"]) == 12
    assert results["label"] == 1
