"""Smoke runs of the MC dropout recipes in --quick mode, checking the numbers they report."""

from __future__ import annotations

import json

import numpy as np
from idx_files import write_digits_as_mnist


def test_mc_dropout_regression_recipe(run_recipe):
    out = run_recipe("mc_dropout_regression")
    assert (out / "mc_dropout_regression.png").stat().st_size > 10_000
    results = json.loads((out / "mc_dropout_regression.json").read_text())
    assert results["eval_mode_spread"] == 0.0
    for method in ("mc_dropout_tanh", "mc_dropout_relu", "gp", "svi_bnn", "deep_ensemble"):
        assert results[f"{method}_crps_in_range"] > 0
        assert isinstance(results[f"{method}_nll_in_range"], float)
    assert results["mc_dropout_relu_std_far_over_in_range"] >= 5
    with np.load(out / "mc_dropout_regression_samples.npz") as saved:
        grid = saved["x_grid"][:, 0]
        for method in ("mc_dropout_tanh", "mc_dropout_relu", "gp", "svi_bnn", "deep_ensemble"):
            std = saved[f"{method}/std"][:, 0]
            # the saved σ gives back the reported far/in ratio
            ratio = std[np.abs(grid) >= 12].mean() / std[np.abs(grid) <= 5].mean()
            assert abs(ratio - results[f"{method}_std_far_over_in_range"]) < 1e-4 * ratio


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
    # the far-away test point (2025) lies inside the drawn horizon, and ReLU MC dropout is less
    # sure there than over the held-out years
    with np.load(out / "mc_dropout_co2_samples.npz") as saved:
        assert saved["years"].max() >= results["far_point_year"] > 2001
        assert set(saved.files) >= {"standard_net", "relu/mean", "relu/std", "gp/std", "tanh/std"}
    assert (
        results["mc_dropout_relu_std_at_far_point"]
        > results["mc_dropout_relu_std_extrapolation_mean"]
    )


def test_mc_dropout_classification_recipe(run_recipe):
    out = run_recipe("mc_dropout_classification")
    assert (out / "mc_dropout_classification.png").stat().st_size > 10_000
    results = json.loads((out / "mc_dropout_classification.json").read_text())
    assert results["test_accuracy_mc"] > 0.5  # well above chance (0.1) even after 4 epochs
    assert len(results["rotation_entropy"]) == 12
    assert results["label"] == 1
    with np.load(out / "mc_dropout_classification_samples.npz") as saved:
        assert saved["logits"].shape == (100, 12, 10) and saved["images"].shape == (12, 1, 8, 8)
        ones = saved["ones_logits"].astype(np.float64)  # (T, n_ones, A, 10)
    # the JSON's mean entropy over the turned "1"s is the entropy of their mean softmax, recomputed
    assert ones.shape == (100, results["n_ones"], 12, 10)
    p = np.exp(ones - ones.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).mean(0)  # (n_ones, A, 10)
    entropy = -(p * np.log(np.clip(p, 1e-30, None))).sum(-1).mean(0)
    np.testing.assert_allclose(entropy, results["ones_mean_entropy"], atol=1e-2)  # float16
    # the 5-NN shares and the majority shares are fractions of the turned "1"s
    for key in ("ones_majority_share", "ones_5nn_majority_share"):
        assert all(0 < v <= 1 for v in results[key])
    # upright, a "1"'s nearest training image is about as close as any test digit's
    assert results["ones_nearest_distance_over_test_median"][0] < 1.5


def test_mc_dropout_classification_mnist_configuration(run_recipe, tmp_path):
    folder = write_digits_as_mnist(tmp_path / "mnist")
    out = run_recipe("mc_dropout_classification", "--data-dir", str(folder))
    results = json.loads((out / "mc_dropout_classification_mnist.json").read_text())
    assert results["data"] == "mnist" and results["label"] == 1
    assert (out / "mc_dropout_classification_mnist.png").stat().st_size > 10_000
    with np.load(out / "mc_dropout_classification_mnist_samples.npz") as saved:
        assert saved["images"].shape == (12, 1, 28, 28)
