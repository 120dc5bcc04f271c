"""The package as a whole: lazy namespaces resolve, and importing changes no global state."""

import importlib
import subprocess
import sys

import pytest

import ebm

NAMESPACES = ["ebm", "ebm.models", "ebm.data", "ebm.metrics", "ebm.bayes", "ebm.inference"]


def test_import_has_no_global_side_effects():
    # a fresh interpreter: import everything public and compare global state before and after
    code = """
import random, numpy as np, torch
torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
dtype, threads, grad = torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled()
import sys
import ebm
for name in ebm.__all__:
    getattr(ebm, name)
assert torch.equal(torch_state, torch.get_rng_state()), "torch RNG changed"
assert (np_state == np.random.get_state()[1]).all(), "numpy RNG changed"
assert py_state == random.getstate(), "python RNG changed"
assert dtype == torch.get_default_dtype() and threads == torch.get_num_threads() and grad == torch.is_grad_enabled()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_import_ebm_is_light():
    code = "import sys, ebm; print(sorted(m for m in ('pyro', 'torchdiffeq', 'matplotlib', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_exported_name_resolves(namespace):
    module = importlib.import_module(namespace)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{namespace}.{name}"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_dir_lists_the_public_names(namespace):
    module = importlib.import_module(namespace)
    assert set(module.__all__) <= set(dir(module))


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ebm.nope  # noqa: B018


def test_every_submodule_is_exported_and_loads_lazily():
    # score_matching was importable but missing from ebm.__all__ (and from dir(ebm))
    code = (
        "import sys, ebm; loaded = 'ebm.score_matching' in sys.modules; "
        "m = ebm.score_matching; print(loaded, 'score_matching' in ebm.__all__, "
        "'score_matching' in dir(ebm), m.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True", "ebm.score_matching"], out.stderr[-2000:]
