"""Smoke runs of the latent-variable recipes (quick mode), checking the targets they report."""

from __future__ import annotations

import json


def test_ellipse_latent_learns_the_radii_and_flows_onto_the_ellipse(run_recipe):
    out = run_recipe("ellipse_latent")
    for name in ("ellipse_latent.png", "ellipse_latent_flow.png"):
        assert (out / name).stat().st_size > 10_000
    results = json.loads((out / "ellipse_latent.json").read_text())
    w1, w2 = results["w_learned"]["inf"]
    # ρ(0) = [β, α] = (2, 1.5); 24 points with noise 1/20 and a 48-angle grid
    assert abs(w1 - 2.0) < 0.1 and abs(w2 - 1.5) < 0.1
    # ž is within about a grid step (2π/48 ≈ 0.13) of the true angle, noise included
    assert results["zhat_minus_theta_max_abs"] < 0.2
    assert results["flow_F_monotone"] is True
    assert results["flow_final_F_inf_max"] < 0.01


def test_horn_latent_separates_the_horn_from_points_off_it(run_recipe):
    out = run_recipe("horn_latent")
    for name in ("horn_latent.png", "horn_latent_radii.png", "horn_latent_eval.png"):
        assert (out / name).stat().st_size > 10_000
    everything = json.loads((out / "horn_latent.json").read_text())
    # kinks spread over [0, 1]: the radii are followed at small x too (the default
    # initialisation left f constant below x ≈ 0.15, 0.37 off ρ there in quick mode)
    assert everything["radius_error"]["zero_temperature"]["max_abs_x_in_0_0.2"] < 0.2
    results = everything["held_out_F_inf"]
    for model in ("zero_temperature", "beta"):
        r = results[model]
        for off in ("radii x0.7", "radii x1.3", "wrong x"):
            assert r[f"off[{off}]_mean"] > 10 * r["on_manifold_mean"], (model, off)
            assert r[f"off[{off}]_frac_higher"] > 0.9, (model, off)
    # training moved the free energy of the held-out horn down by orders of magnitude
    assert (
        results["zero_temperature"]["on_manifold_mean"]
        < 0.01 * results["before"]["on_manifold_mean"]
    )


def test_circle_energy_finds_both_branches_of_the_closed_form(run_recipe):
    out = run_recipe("circle_energy")
    assert (out / "circle_energy.png").stat().st_size > 10_000
    r = json.loads((out / "circle_energy.json").read_text())
    # away from the fold |x| ≈ 1, descent from every start reaches the branch ±√(1 − x²) its
    # start's sign selects (y = 0 beyond the circle) within 1e-3
    for key in ("gd_max_error_inside", "gd_max_error_outside"):
        assert r[key] < 1e-3, key
    assert r["lbfgs_max_error_inside"] < 1e-3 and r["lbfgs_max_error_outside"] < 1e-3
    assert r["gd_branch_is_sign_of_start"] is True
    # at x = r (E = y⁴) descent is slow, as the gradient flow's y₀/√(1 + 8y₀²·lr·steps) says
    predicted = r["gd_error_at_x_equals_r_flow_prediction"]
    assert abs(r["gd_error_at_x_equals_r"] - predicted) < 0.02 * predicted
    # two answers inside the circle, one outside, by descent and by the grid's local minima
    assert r["gd_answers_inside"] == [2] and r["gd_answers_outside"] == [1]
    assert r["search_local_minima_inside"] == [2] and r["search_local_minima_outside"] == [1]
    # the grid's argmin is within one grid step of a branch; its energy matches
    # min_y E = max(0, x² − 1)² up to the grid (E ≈ (2·√(1 − x²)·step)² at worst)
    assert r["search_max_error"] <= r["search_grid_step"]
    assert r["search_local_minima_max_error_inside"] <= r["search_grid_step"]
    assert r["search_max_energy_error"] < 1e-5


def test_latent_detection_finds_the_digit_and_where_it_is(run_recipe):
    out = run_recipe("latent_detection")
    for name in ("latent_detection.png", "latent_detection_templates.png"):
        assert (out / name).stat().st_size > 10_000
    r = json.loads((out / "latent_detection.json").read_text())
    acc, loc = r["accuracy"], r["location"]
    # the latent position is what makes the templates work: the same templates at the centre
    # only, and a linear classifier of the canvas, are far behind (quick mode: 400 canvases)
    assert acc["latent_min"] > 0.85 and acc["latent_beta1"] > 0.85
    assert acc["centre_only"] < acc["latent_min"] - 0.3
    assert acc["linear"] < acc["latent_min"] - 0.3
    # the true label's best window is the true one for most digits (chance: 1/81)
    assert loc["latent_min"]["exact"] > 0.7 and loc["latent_min"]["mean_px"] < 1.0
    assert r["chance_location_exact"] == 1 / 81
    # started from noise, blank windows win the min: no better than chance
    assert acc["latent_min_from_noise"] < 0.3


def test_elastic_matching_beats_euclidean_and_learns_templates(run_recipe):
    out = run_recipe("elastic_matching")
    assert (out / "elastic_matching.png").stat().st_size > 10_000
    results = json.loads((out / "elastic_matching.json").read_text())
    acc = results["held_out_accuracy"]
    # with the true templates the warps defeat the Euclidean match but not DTW (quick mode:
    # 0.60 and 0.94 on 120 held-out series; chance is 0.25)
    assert acc["true"]["dtw"] > 0.85
    assert acc["true"]["dtw"] > acc["true"]["euclidean"] + 0.2
    # the soft-DTW energy tends to DTW as β grows
    sweep = results["true_templates_accuracy_by_beta"]
    assert sweep["inf"] == acc["true"]["dtw"] and sweep["10"] == acc["true"]["soft_dtw_beta_10"]
    assert sweep["inf"] > sweep["1"]
    # learning through the free energy improves on the blurred class means (quick: 0.57 → 0.81)
    learned, before = acc["learned_soft_dtw_beta_10"], acc["class_means"]
    assert learned["soft_dtw_beta_10"] > before["soft_dtw_beta_10"] + 0.1
