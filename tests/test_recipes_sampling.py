"""Smoke tests: the sampling recipes run in quick mode and write their figures and numbers."""

from __future__ import annotations

import json

import numpy as np

from ebm.metrics import checkerboard_occupancy


def test_ebm_2d(run_recipe):
    out = run_recipe("ebm_2d")
    results = json.loads((out / "ebm_2d.json").read_text())
    toys = {"ring-8", "two-moons", "pinwheel", "checkerboard"}
    assert set(results["datasets"]) == toys
    assert results["seed"] == 0 and results["langevin_steps_from_noise"] >= 1
    assert isinstance(results["all_targets_met"], bool)
    sharp = {
        "ring-8": {"within_3sd", "mode_shares"},
        "two-moons": {"near_data"},
        "pinwheel": {"near_data"},
        "checkerboard": {"inside_squares", "square_shares"},
    }
    for name, r in results["datasets"].items():
        assert sharp[name] | {"mmd", "mmd_data_vs_data", "target_met", "data"} <= set(r)
        assert sharp[name] <= set(r["data"]) and sharp[name] <= set(r["energy_itself"])
        assert set(r["by_langevin_steps"]) == {str(k) for k in results["langevin_steps_recorded"]}
        # the data themselves meet every target (the metrics' ceiling)
        assert r["data"]["target_met"], (name, r["data"])
    assert len(results["datasets"]["checkerboard"]["square_shares"]) == 8
    assert len(results["datasets"]["ring-8"]["mode_shares"]) == 8
    with np.load(out / "ebm_2d_samples.npz") as saved:
        assert set(saved.files) == toys
        for name in toys:
            x = saved[name]
            assert x.shape == (results["n_samples"], 2) and np.isfinite(x).all()
    # the JSON's numbers are those of the saved samples
    with np.load(out / "ebm_2d_samples.npz") as saved:
        inside, _ = checkerboard_occupancy(saved["checkerboard"])
    assert float(inside) == results["datasets"]["checkerboard"]["inside_squares"]
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
    # the Warwick tutorial, shown: its schedule's ᾱ_T and x_T's closed-form moments
    w = results["warwick_tutorial"]
    betas = np.linspace(1e-4, 0.02, 50)
    assert abs(w["alpha_bar_T"] - np.prod(1 - betas)) < 1e-6 and 0.55 < w["alpha_bar_T"] < 0.65
    ab = w["alpha_bar_T"]  # x_T | x_0 ~ N(√ᾱ x_0, 1 − ᾱ); Var x_0 = 0.05² + 0.75² − 0.3²
    assert abs(w["x_T_mean_closed_form"] - np.sqrt(ab) * (0.7 * -0.75 + 0.3 * 0.75)) < 1e-12
    assert abs(w["x_T_std_closed_form"] ** 2 - (1 - ab + ab * 0.475)) < 1e-12
    with np.load(out / "diffusion_1d_warwick_samples.npz") as saved:
        x_T = saved["x_T_forward"]
        se = 1 / np.sqrt(len(x_T))  # 1000 samples: mean within 4 s.e., std within 10 %
        assert abs(x_T.mean() - w["x_T_mean_closed_form"]) < 4 * se
        assert abs(x_T.std() / w["x_T_std_closed_form"] - 1) < 0.1
        # the one step with the trained ε_θ is the one step with the exact E[ε | x_T]
        one, exact = (
            np.sort(saved["one_step_T50"][:, 0]),
            np.sort(saved["one_step_T50_exact_eps"][:, 0]),
        )
        assert np.abs(one - exact).mean() < 0.1
        for name in ("one_step_T50", "ancestral_T50_from_N01", "ancestral_T1000"):
            near = float((np.abs(saved[name] + 0.75) < 0.25).mean())
            assert abs(near - w["fraction_near_-0.75"][name]) < 1e-6
    # Pythagoras for the Gaussian family: KL(q ‖ N(0, 1)) = KL(q ‖ q_G) + KL(q_G ‖ N(0, 1)) with
    # q_G the moment-matched Gaussian, so the quadrature's KL is at least q_G's closed form
    mu, var = w["x_T_mean_closed_form"], w["x_T_std_closed_form"] ** 2
    kl_gauss = 0.5 * (var + mu**2 - 1 - np.log(var))
    assert kl_gauss <= w["kl_q_x_T_to_N01"] < kl_gauss + 0.05 and kl_gauss > 0.05
    assert w["kl_q_x_T_to_N01_T1000"] < 1e-4
    # the one-step generation misses both modes; the corrected chain does not
    assert w["fraction_near_either_mode"]["one_step_T50"] < 0.5
    assert w["fraction_near_either_mode"]["ancestral_T1000"] > 0.8
    assert w["w1_to_data"]["one_step_T50"] > 3 * w["w1_to_data"]["ancestral_T1000"]


def test_cnf_2d(run_recipe):
    out = run_recipe("cnf_2d")
    results = json.loads((out / "cnf_2d.json").read_text())
    # even 40 quick steps beat the best Gaussian fit to two moons (−1.89 nats at this noise)
    assert results["test_log_likelihood"] > -1.89
    assert (out / "cnf_2d.png").exists()
    runs = results["runs"]
    assert runs["likelihood"]["test_log_likelihood"] == results["test_log_likelihood"]
    # 200 quick flow-matching steps (no ODE solve) beat the Gaussian too
    assert runs["flow_matching_independent"]["test_log_likelihood"] > -1.89
    for name in ("flow_matching_independent", "flow_matching_ot"):
        r = runs[name]
        assert r["train_cpu_seconds"] > 0 and r["train_wall_seconds"] > 0
        gap = runs["likelihood"]["test_log_likelihood"] - r["test_log_likelihood"]
        assert abs(r["log_likelihood_gap_to_likelihood"] - gap) < 1e-9
    with np.load(out / "cnf_2d_samples.npz") as saved:
        assert saved["samples"].shape == (1000, 2) and saved["test_data"].shape == (500, 2)
        assert saved["samples_flow_matching_ot"].shape == (1000, 2)
