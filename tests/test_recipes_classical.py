"""Smoke tests of the classical-energy recipes in quick mode, checking their key numbers."""

from __future__ import annotations

import json


def test_pca_kmeans_energy(run_recipe):
    out = run_recipe("pca_kmeans_energy")
    for name in ("pca_kmeans_energy", "pca_kmeans_energy_soft"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    results = json.loads((out / "pca_kmeans_energy.json").read_text())
    for data in ("parabola", "spiral"):
        # K prototypes along a curve reconstruct it far better than one principal line
        assert results[data]["kmeans_inertia_per_point"] < 0.2 * results[data]["pca_mean_energy"]
    free = results["soft_kmeans_mean_free_energy_on_data"]
    # F_β rises towards the k-means energy as β grows
    assert free["0.3"] < free["3"] < free["30"] <= free["inf"] + 1e-6
    # PCA as a tied-weight linear autoencoder: trained without a constraint, W ends orthonormal
    # and spans PCA's principal line (Baldi & Hornik), with PCA's reconstruction error
    assert (out / "pca_kmeans_energy_autoencoder.png").stat().st_size > 10_000
    for data in ("parabola", "spiral"):
        ae = results["linear_autoencoder"][data]
        assert ae["principal_angle_to_pca_degrees"] < 0.5
        assert ae["WWt_minus_identity"] < 1e-4
        assert ae["distance_pca_mean_to_learned_line"] < 1e-3
        assert abs(ae["mean_energy"] / results[data]["pca_mean_energy"] - 1) < 1e-4
        assert ae["pca_mean_energy"] == results[data]["pca_mean_energy"]


def test_autoencoder_manifold(run_recipe):
    out = run_recipe("autoencoder_manifold")
    for name in ("autoencoder_manifold", "autoencoder_manifold_digits"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    results = json.loads((out / "autoencoder_manifold.json").read_text())
    for kind in ("DAE", "CAE"):
        on = results[f"parabola_{kind}_energy_on_data"]
        assert on < results[f"parabola_{kind}_energy_off_data_0.1"]
        # the flow dy/dt = G(y) − y ends several times closer to the parabola than it starts
        end = results[f"parabola_{kind}_manifold_gap_end"]
        assert end < 0.25 * results[f"parabola_{kind}_manifold_gap_start"]
    assert results["digits_mse_reconstructed"] < 0.5 * results["digits_mse_noisy"]
    # the DAE's failure mode: iterated reconstructions from far off a thin spiral
    assert (out / "autoencoder_manifold_dae_failure.png").stat().st_size > 10_000
    iterated = results["spiral_DAE_iterated"]
    for key in ("sigma_0.05", "sigma_0.3"):
        r = iterated[key]
        for i, reach in enumerate(r["reach_data"]):
            # every start ends in exactly one of the three outcomes
            total = reach + r["escape"][i] + r["stranded_off_data"][i]
            assert abs(total - 1) < 1e-6
            assert 1 <= r["distinct_end_points"][i] <= r["far_starts"]
            assert -1 <= r["mean_cosine_field_to_nearest_data"][i] <= 1
    # a projection onto the spiral would end at hundreds of places; σ = 0.3 collapses to a few
    assert (
        max(iterated["sigma_0.3"]["distinct_end_points"])
        < 0.1 * iterated["sigma_0.3"]["far_starts"]
    )
    # the off-data metrics are shares of the box and a ratio of energies, for every model
    for model in ("parabola_DAE", "parabola_CAE", "moons_DAE"):
        assert 0 < results[f"{model}_off_data_area_fraction"] < 1
        assert 0 <= results[f"{model}_low_energy_fraction_of_off_data_area"] <= 1
        assert results[f"{model}_min_energy_off_data_over_median_on_data"] > 0
        assert 0 <= results[f"{model}_flow_ends_off_data"] <= results[f"{model}_flow_starts"] == 81
