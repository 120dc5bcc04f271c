"""Metrics: sample quality (MMD, energy distance, mode coverage, Fréchet distance), goodness of
fit to a score (kernel Stein discrepancy and its test) and predictive uncertainty (NLL, CRPS,
coverage, calibration, ECE and adaptive ECE, Brier, AUROC, FPR at 95 % TPR, AURC), and the
bootstrap interval of any of them."""

from ebm._lazy import lazy_namespace

_EXPORTS = {
    # two-sample distances (samples.py)
    "mmd": "samples",
    "energy_distance": "samples",
    "mode_coverage": "samples",
    "mode_counts": "samples",
    # predictive uncertainty (uncertainty.py)
    "gaussian_nll": "uncertainty",
    "crps_gaussian": "uncertainty",
    "crps_samples": "uncertainty",
    "interval_coverage": "uncertainty",
    "calibration_curve": "uncertainty",
    "brier_score": "uncertainty",
    "expected_calibration_error": "uncertainty",
    "ood_auroc": "uncertainty",
    "adaptive_ece": "calibration",
    "aurc": "selective",
    "fpr_at_tpr": "ood",
    # Fréchet distance on classifier features (frechet.py)
    "frechet_distance": "frechet",
    "gaussian_frechet_distance": "frechet",
    "frechet_classifier_distance": "frechet",
    "classifier_features": "frechet",
    # sharp checks for the 2-D toys (toy_quality.py)
    "checkerboard_occupancy": "toy_quality",
    "mode_weights": "toy_quality",
    "nearest_distance": "toy_quality",
    "near_data_fraction": "toy_quality",
    # goodness of fit to a score (stein.py)
    "kernel_stein_discrepancy": "stein",
    "ksd_test": "stein",
    # sampling error of any statistic (bootstrap.py)
    "bootstrap_interval": "bootstrap",
    "BootstrapInterval": "bootstrap",
}
__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
