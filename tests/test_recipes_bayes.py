"""Smoke runs of the MC dropout recipes in --quick mode, checking the numbers they report."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

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
    # issue 17: last-layer Laplace and SWAG rows, and 90 % intervals for every method
    for method in ("laplace_tanh", "laplace_relu", "swag_tanh", "swag_relu"):
        assert math.isfinite(results[f"{method}_nll_in_range"])
        assert results[f"{method}_crps_in_range"] > 0
        assert 0 < results[f"{method}_std_far_over_in_range"] < math.inf
    assert results["swag_relu_snapshots"] >= 2 and results["n_calibration"] == 200
    for method in ("mc_dropout_tanh", "mc_dropout_relu", "gp", "svi_bnn", "deep_ensemble"):
        for kind in ("gaussian90", "conformal_absolute", "conformal_normalized"):
            assert 0 <= results[f"{method}_{kind}_coverage"] <= 1
            assert 0 < results[f"{method}_{kind}_width"] < math.inf
    for method in ("mc_dropout_tanh", "mc_dropout_relu", "laplace_relu", "swag_relu"):
        for score in ("absolute", "normalized"):
            # 200 calibration and 200 test points at α = 0.1: the test coverage of one split
            # scatters around ~0.9 with a std of about 0.03
            assert 0.75 <= results[f"{method}_conformal_{score}_coverage"] <= 1
    assert (out / "mc_dropout_regression_coverage.png").stat().st_size > 10_000
    alphas = results["coverage_alphas"]
    for key in ("gaussian", "absolute", "normalized"):
        curve = results[f"mc_dropout_relu_coverage_vs_alpha_{key}"]
        assert len(curve) == len(alphas) and all(0 <= c <= 1 for c in curve)


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
    # issue 17: Laplace and SWAG rows; conformal intervals calibrated on left-out months before 1990
    for method in ("laplace_relu", "laplace_tanh", "swag_relu", "swag_tanh"):
        assert results[f"{method}_crps_extrapolation"] > 0
        assert math.isfinite(results[f"{method}_nll_extrapolation"])
        assert 0 <= results[f"{method}_coverage95_extrapolation"] <= 1
    assert results["n_calibration"] >= 90 and results["n_test_in_range"] >= 90
    for method in ("mc_dropout_relu", "gp", "mc_dropout_tanh", "laplace_relu", "swag_relu"):
        for score in ("absolute", "normalized"):
            # in range the calibration and test months are exchangeable: coverage near 0.9
            assert 0.7 <= results[f"{method}_conformal_{score}_coverage_in_range"] <= 1
            assert 0 <= results[f"{method}_conformal_{score}_coverage_extrapolation"] <= 1
            assert 0 < results[f"{method}_conformal_{score}_width_in_range"] < math.inf


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
    check_posthoc_rows(results, ("eval", "mc_dropout", "temperature", "vector", "laplace", "swag"))
    assert (out / "mc_dropout_classification_reliability.png").stat().st_size > 10_000
    assert results["n_validation"] + results["n_held_out"] == results["n_test_eval"]


def check_posthoc_rows(results, methods):
    """Issue 17's rows: finite metrics in range; scaling by one T keeps the accuracy; conformal
    sets at α = 0.1 cover about 90 % of the held-out images."""
    for method in methods:
        for metric in ("accuracy", "ece", "adaptive_ece", "brier", "aurc", "ood_auroc"):
            assert 0 <= results[f"{method}_{metric}"] <= 1, (method, metric)
        assert 0 <= results[f"{method}_fpr_at_95"] <= 1
        assert 0 < results[f"{method}_nll"] < math.inf
    assert results["temperature_accuracy"] == results["eval_accuracy"]  # argmax unchanged
    assert results["temperature"] > 0
    for method in ("eval", "mc_dropout"):
        for conformal in ("aps", "raps"):
            key = f"{method}_{conformal}"
            assert 0.7 <= results[f"{key}_coverage"] <= 1, key
            assert 0 <= results[f"{key}_mean_size"] <= 10


def test_mc_dropout_classification_mnist_configuration(run_recipe, tmp_path):
    folder = write_digits_as_mnist(tmp_path / "mnist")
    out = run_recipe("mc_dropout_classification", "--data-dir", str(folder))
    results = json.loads((out / "mc_dropout_classification_mnist.json").read_text())
    assert results["data"] == "mnist" and results["label"] == 1
    assert (out / "mc_dropout_classification_mnist.png").stat().st_size > 10_000
    check_posthoc_rows(results, ("eval", "mc_dropout", "temperature", "vector", "laplace"))
    assert "swag_accuracy" not in results  # 3 epochs (1 under --quick): too few snapshots
    with np.load(out / "mc_dropout_classification_mnist_samples.npz") as saved:
        assert saved["images"].shape == (12, 1, 28, 28)


def test_bayes_guide_tables_are_the_json_numbers():
    """The uncertainty tables of docs/guide/bayes.md are what tools/bayes_tables.py writes from
    the committed figures/*.json (rerun it after a full run of a recipe)."""
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bayes_tables", root / "tools/bayes_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    text = tables.GUIDE.read_text()
    assert text.count("<!-- table: ") == len(tables.TABLES)  # every table is in the guide
    assert tables.render(text) == text, "run python tools/bayes_tables.py"
    results = json.loads((root / "figures/mc_dropout_classification.json").read_text())
    assert f"| temperature scaling | {results['temperature_accuracy']:.3f} |" in text
    # display rounding only: significant digits without exponents, no "-0.00"
    assert tables.significant(0.08502666) == "0.0850" and tables.significant(235.2) == "235"
    assert tables.fixed(-0.0004, 2) == "0.00" and tables.fixed(-3.37, 2) == "-3.37"
