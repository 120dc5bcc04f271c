"""Shared test fixtures. Tests never reseed the global RNG: they use explicit generators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def recipe_cache(tmp_path_factory):
    """A classifier cache for the recipe runs, so tests never write into the user's ~/.cache."""
    return tmp_path_factory.mktemp("ebm_cache")


@pytest.fixture
def run_recipe(tmp_path, recipe_cache):
    """Run ``recipes/<name>.py --quick --device cpu --out tmp`` in a subprocess; return the out dir."""

    def run(name: str, *extra: str, timeout: float = 300) -> Path:
        env = {
            **os.environ,
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT),
            "EBM_CACHE": str(recipe_cache),
        }
        cmd = [
            sys.executable,
            str(ROOT / "recipes" / f"{name}.py"),
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            *extra,
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return tmp_path

    return run
