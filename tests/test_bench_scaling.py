"""benchmarks/bench_scaling.py (issue 18, item 6): the exponent fit recovers known exponents, the
module runs at tiny sizes into well-formed rows, and the docs table is the committed JSON's.
Nothing here is timed against a threshold."""

import json
import math
from pathlib import Path

import pytest

from benchmarks import bench_scaling
from benchmarks.__main__ import names

ROOT = Path(__file__).resolve().parents[1]


def test_fit_exponent_recovers_power_laws():
    sizes = [2.0**k for k in range(3, 9)]
    for a, b in ((1e-3, 1.0), (2e-6, 2.0), (5e-9, 3.0), (0.1, 0.0), (3.0, -0.5)):
        b_hat, a_hat = bench_scaling.fit_exponent(sizes, [a * n**b for n in sizes])
        assert b_hat == pytest.approx(b, abs=1e-12)
        assert a_hat == pytest.approx(a, rel=1e-9)
    # least squares, not the endpoints: log t = 2 log n ± 0.1 alternating around the line of slope 2
    noisy = [n**2 * math.exp(0.1 if i % 2 else -0.1) for i, n in enumerate(sizes)]
    b_hat, _ = bench_scaling.fit_exponent(sizes, noisy)
    assert abs(b_hat - 2.0) < 0.05 and b_hat != 2.0


def test_registered_and_every_sweep_is_geometric():
    assert "scaling" in names()
    sweeps = bench_scaling.sweeps()
    assert len({s.key for s in sweeps}) == len(sweeps)
    for s in sweeps:
        ratios = {b / a for a, b in zip(s.sizes, s.sizes[1:])}
        assert len(ratios) == 1 and ratios.pop() > 1, s.key
        assert len(s.sizes) - s.fit_from >= 3, s.key  # at least three points in every fit


def test_tiny_run_writes_well_formed_rows(tmp_path):
    keys = ["kmeans_n", "langevin_steps", "nll_k"]  # one with a fixed-work peer, two without
    rows = bench_scaling.run(scale=0.01, rounds=2, only=keys, min_seconds=0.0)
    assert [r["key"] for r in rows] == keys
    result = json.loads(json.dumps({"machine": "test", "rows": rows}))
    for row in result["rows"]:
        n = len(row["sizes"])
        assert row["fit_points"] == row["sizes"][-len(row["fit_points"]) :]
        curves = [row["ours_curve"]] + ([row["peer_curve"]] if "peer_curve" in row else [])
        for curve in curves:
            assert len(curve["median_s"]) == len(curve["rounds_s"]) == n
            assert all(len(r) == 2 for r in curve["rounds_s"])
            assert all(
                lo <= m <= hi
                for lo, m, hi in zip(curve["min_s"], curve["median_s"], curve["max_s"])
            )
            assert math.isfinite(curve["exponent"]) and curve["prefactor"] > 0
            lo, hi = curve["exponent_5_95"]
            assert lo <= hi
        assert len(row["load_1min_before_after"]) == 2
    km = result["rows"][0]
    assert "peer_curve" in km
    # time per Lloyd iteration: the iteration counts (max_iter = 10) are recorded for both sides
    assert all(1 <= i <= 10 for side in ("ours", "peer") for i in km["iterations_per_fit"][side])
    table = bench_scaling.markdown_table(result).splitlines()
    assert len(table) == 2 + len(keys)
    bench_scaling.plot(result, tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


def test_docs_table_is_the_committed_json():
    result = json.loads((ROOT / "benchmarks" / "results" / "scaling.json").read_text())
    assert {r["key"] for r in result["rows"]} == {s.key for s in bench_scaling.sweeps()}
    page = (ROOT / "docs" / "guide" / "benchmarks.md").read_text(encoding="utf-8")
    assert bench_scaling.markdown_table(result) in page
    assert (ROOT / "docs" / "assets" / "scaling.png").is_file()
