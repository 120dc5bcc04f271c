"""Shared test fixtures. Tests never reseed the global RNG: they use explicit generators.

Devices: a test that needs CUDA carries ``@pytest.mark.cuda`` and is skipped, with the reason, where
``torch.cuda.is_available()`` is False. A device-agnostic test takes the ``device`` fixture: it
runs on the CPU everywhere and again on CUDA where there is a GPU (``pytest -m cuda`` selects the
CUDA runs alone; ``make gpu-check`` runs them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


def _no_cuda_reason() -> str | None:
    if torch.cuda.is_available():
        return None
    build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    return f"needs a CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}, {build})"


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` where there is no CUDA device, saying why."""
    reason = _no_cuda_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request) -> torch.device:
    """The device of a device-agnostic test: the CPU, and CUDA (marked ``cuda``) where available."""
    return torch.device(request.param)


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
