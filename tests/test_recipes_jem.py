"""Smoke runs of the JEM recipe in --quick mode: the JSON's numbers come back from the saved
arrays (AUROC against scikit-learn's), on 8×8 digits and on the MNIST IDX configuration."""

import json

import numpy as np
import torch
from idx_files import write_digits_as_mnist
from sklearn.metrics import log_loss, roc_auc_score

from ebm.metrics import expected_calibration_error


def _check(out, name):
    res = json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.png").stat().st_size > 10_000
    with np.load(out / f"{name}_samples.npz") as saved:
        s = {k: saved[k] for k in saved.files}
    labels = s["test_labels"]
    assert s["unconditional"].shape[0] == 40 and s["conditional"].shape[0] == 60
    for model in ("plain", "jem"):
        assert res[f"{model}_accuracy"] > 0.3  # well above chance (0.1) after a few epochs
        probs = s[f"{model}_probs"]
        assert abs((probs.argmax(1) == labels).mean() - res[f"{model}_accuracy"]) < 1e-6
        ece = expected_calibration_error(torch.from_numpy(probs), torch.from_numpy(labels))
        assert abs(float(ece) - res[f"{model}_ece"]) < 1e-6
        # OOD inputs are the positives, scored by their energy (high = OOD)
        e_in, e_out = s[f"{model}_energy_test"], s[f"{model}_energy_ood"]
        truth = np.r_[np.zeros(len(e_in)), np.ones(len(e_out))]
        auroc = roc_auc_score(truth, np.r_[e_in, e_out])
        assert abs(auroc - res[f"{model}_ood_auroc_energy"]) < 1e-5
        # the proper scoring rules, against scikit-learn
        assert abs(log_loss(labels, probs, labels=range(10)) - res[f"{model}_nll"]) < 1e-4
        onehot = np.eye(10)[labels]
        assert abs(((probs - onehot) ** 2).sum(1).mean() - res[f"{model}_brier"]) < 1e-5
    plain_best = max(res[f"plain_ood_auroc_{k}"] for k in ("energy", "max_softmax", "mc_entropy"))
    assert res["target_better_ood_auroc"] == (res["jem_ood_auroc_energy"] > plain_best)
    # the paired differences: estimates are JEM − plain on the whole test set
    diff = res["jem_minus_plain"]
    assert abs(diff["ece"][0] - (res["jem_ece"] - res["plain_ece"])) < 1e-6
    assert abs(diff["ood_auroc"][0] - (res["jem_ood_auroc_energy"] - plain_best)) < 1e-6
    for _est, low, high in diff.values():
        assert low <= high
    return res


def test_jem_digits(run_recipe):
    res = _check(run_recipe("jem_digits"), "jem_digits")
    assert res["data"] == "digits8x8" and res["n_test"] == 359


def test_jem_digits_mnist_configuration(run_recipe, tmp_path):
    folder = write_digits_as_mnist(tmp_path / "mnist")
    res = _check(run_recipe("jem_digits", "--data-dir", str(folder)), "jem_digits_mnist")
    assert res["data"] == "mnist"
