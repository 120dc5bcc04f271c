"""The committed energy_shaping run (figures/energy_shaping.json, _samples.npz) says what its
samples show, and the docs' table is the JSON's.

The sample metrics are recomputed from the samples saved beside the JSON with the recipe's
definitions (ebm.metrics), the binary KLs from the saved probabilities over the 1024 states, and
the table in docs/guide/sampling.md is re-formatted from the JSON, so a figure re-run without its
numbers, or numbers edited by hand, fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ebm.data.toy2d import ring_centers
from ebm.metrics import mmd, mode_weights

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / "figures" / "energy_shaping.json").read_text())
METHODS = ["CD short-run", "PCD", "exact SM", "sliced SM", "denoising SM", "NCE"]
BINARY = ["max likelihood", "ratio matching", "MPF"]


def _key(name: str) -> str:
    return name.replace(" ", "_")


def test_the_committed_run_is_the_full_run():
    assert RESULTS["quick"] is False
    assert RESULTS["settings"]["steps"] == 3000 and RESULTS["settings"]["grid_cells"] == 300
    assert set(RESULTS["methods_2d"]) == set(METHODS)


def test_sample_metrics_are_those_of_the_saved_samples():
    with np.load(ROOT / "figures" / "energy_shaping_samples.npz") as saved:
        test = torch.from_numpy(saved["test_data"])
        for name in METHODS:
            for kind in ("exact", "langevin"):
                x = torch.from_numpy(saved[f"{_key(name)}__{kind}"])
                r = RESULTS["methods_2d"][name][f"{kind}_samples"]
                shares, within = mode_weights(x, ring_centers(8, 2.0), std=0.15, n_std=3.0)
                assert within.item() == pytest.approx(r["within_3sd"])
                assert shares.tolist() == pytest.approx(r["mode_shares"])
                if kind == "exact":  # the docs' MMD column (each costs a 4000 × 4000 kernel)
                    assert mmd(x, test).item() == pytest.approx(
                        r["mmd_to_test"], rel=1e-4, abs=1e-6
                    )


def test_binary_kls_are_those_of_the_saved_probabilities():
    with np.load(ROOT / "figures" / "energy_shaping_samples.npz") as saved:
        p_true = torch.from_numpy(saved["binary_p_true"])
        for name in BINARY:
            p = torch.from_numpy(saved[f"binary_p_{_key(name)}"])
            kl = (p_true * (p_true.log() - p.log())).sum().item()
            assert kl == pytest.approx(RESULTS["binary"][name]["kl_true_to_model"], rel=1e-4)


def _docs_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "guide" / "sampling.md").read_text()
    section = text[text.index("## Shaping one energy six ways") :]
    section = section[: section.index("\n## ")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        while cells and not cells[-1]:  # the reference rows leave the last columns empty
            cells.pop()
        if line.startswith("|") and len(cells) > 1 and not set(cells[0]) <= set("-"):
            rows[cells[0]] = cells[1:]
    return rows


def test_the_docs_tables_are_the_json():
    rows = _docs_rows()
    truth = RESULTS["true_density_2d"]
    assert rows["the ring itself"][0] == f"{truth['test_log_likelihood']:.2f}"
    for name in METHODS:
        r = RESULTS["methods_2d"][name]
        q, chains = r["exact_samples"], r["langevin_samples"]
        expected = [
            f"{r['test_log_likelihood']:.2f}",
            f"{r['mass_outside_box']:.0e}",
            f"{100 * q['within_3sd']:.1f} %",
            f"{100 * min(q['mode_shares']):.1f}–{100 * max(q['mode_shares']):.1f} %",
            f"{q['mmd_to_test']:.4f}",
            f"{100 * chains['within_3sd']:.1f} %",
            f"{100 * min(chains['mode_shares']):.1f}–{100 * max(chains['mode_shares']):.1f} %",
            f"{r['train_seconds']:.0f}",
        ]
        assert rows[name] == expected, name
    for name in [*BINARY, "true distribution"]:
        b = RESULTS["binary"][name]
        expected = [f"{b['test_log_likelihood']:.3f}", f"{b['train_log_likelihood']:.3f}"]
        if name != "true distribution":
            expected += [f"{b['kl_true_to_model']:.3f}", f"{b['train_seconds']:.1f}"]
        assert rows[name] == expected, name
