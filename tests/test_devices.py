"""The same computations on every device: the Trainer in each precision, the samplers, and a
checkpoint written on one device and resumed on the CPU.

Each test takes the ``device`` fixture (tests/conftest.py): it runs on the CPU everywhere and
again on CUDA, marked ``cuda``, where there is a GPU (``make gpu-check``). On the CPU the
comparisons with the CPU are trivially exact; they are written for the CUDA run.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from _train_models import MLP, mlp_data

from ebm.sampling import hmc, langevin, mala, parallel_tempering
from ebm.train import Trainer, load_checkpoint

PRECISIONS = ("32", "bf16", "16-mixed")
# relative tolerance on the final loss of a fit on the device against the same fit on the CPU
RTOL_VS_CPU = {"32": 1e-3, "bf16": 3e-2, "16-mixed": 3e-2}
# against the CPU fit in fp32: 16-mixed skips its first steps while the GradScaler's scale
# (2^16) overflows fp16 gradients, so it ends a few steps behind (about 4% on the CPU)
RTOL_VS_FP32 = {"32": 1e-3, "bf16": 5e-2, "16-mixed": 0.15}


def _fit(device, precision: str, max_epochs: int = 20, **kwargs):
    x, y = mlp_data(96)
    model = MLP(seed=0)
    trainer = Trainer(
        max_epochs=max_epochs,
        batch_size=32,
        seed=0,
        device=device,
        precision=precision,
        progress=False,
        **kwargs,
    )
    trainer.fit(model, (x, y))
    return model, trainer


@functools.cache
def _cpu_losses(precision: str) -> tuple[float, ...]:
    return tuple(h["loss"] for h in _fit("cpu", precision)[1].history)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_trainer_fit_in_each_precision_matches_the_cpu(device, precision):
    model, trainer = _fit(device, precision)
    losses = [h["loss"] for h in trainer.history]
    assert trainer.history[-1]["epoch"] == 19 and all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < 0.5 * losses[0], losses  # it learned
    # torch.amp semantics: parameters stay fp32, on the device, in every precision
    for p in model.parameters():
        assert p.dtype == torch.float32 and p.device.type == device.type
    if precision == "16-mixed":
        scale = trainer._precision.scaler.get_scale()
        assert math.isfinite(scale) and scale > 0
    same = _cpu_losses(precision)[-1]
    assert abs(losses[-1] - same) <= RTOL_VS_CPU[precision] * same, (losses[-1], same)
    fp32 = _cpu_losses("32")[-1]
    assert abs(losses[-1] - fp32) <= RTOL_VS_FP32[precision] * fp32, (losses[-1], fp32)


MU, VAR = (1.0, -2.0), 0.5
N_CHAINS = 4000
# Langevin: a 25% variance bias, resolved
STEP = {"langevin": 0.2, "mala": 0.2, "hmc": 0.2, "tempering": 0.2}


def _draw(sampler: str, device, seed: int) -> torch.Tensor:
    """N_CHAINS samples of N(MU, VAR·I) from ``sampler`` on ``device``, seeded by ``seed``."""
    device = torch.device(device)
    mu = torch.tensor(MU, device=device)

    def energy(x):  # (B, 2) -> (B,), low = likely
        return 0.5 * ((x - mu) ** 2).sum(-1) / VAR

    g = torch.Generator(device=device).manual_seed(seed)
    x0 = torch.randn(N_CHAINS, 2, generator=g, device=device)
    if sampler == "langevin":
        return langevin(energy, x0, n_steps=200, step_size=STEP[sampler], generator=g)
    if sampler == "mala":
        return mala(energy, x0, n_steps=200, step_size=STEP[sampler], generator=g)[0]
    if sampler == "tempering":  # the β = 1 replicas' last states
        return parallel_tempering(energy, x0, (1.0, 0.5), 200, STEP[sampler], generator=g)[0][-1]
    return hmc(energy, x0, n_steps=50, step_size=STEP[sampler], n_leapfrog=5, generator=g)[0]


@functools.cache
def _cpu_samples(sampler: str) -> torch.Tensor:
    return _draw(sampler, "cpu", seed=0)


@pytest.mark.parametrize("sampler", ["langevin", "mala", "hmc", "tempering"])
def test_samplers_on_the_device_match_the_closed_form_and_the_cpu(device, sampler):
    """A generator on the device seeds the chains: the same seed gives the same samples on one
    device (CUDA's random stream differs from the CPU's, so across devices they agree in
    distribution), and the moments are N(MU, VAR)'s, with unadjusted Langevin's known bias."""
    x = _draw(sampler, device, seed=0)
    assert x.device.type == device.type and x.shape == (N_CHAINS, 2)
    assert torch.equal(x, _draw(sampler, device, seed=0))
    assert not torch.equal(x, _draw(sampler, device, seed=1))
    # unadjusted Langevin on a Gaussian: x' = x − h(x − μ)/σ² + √(2h)ξ is stationary with
    # variance σ² / (1 − h/(2σ²)); MALA, HMC and tempering (MALA moves) are exact
    h = STEP[sampler]
    var = VAR / (1 - h / (2 * VAR)) if sampler == "langevin" else VAR
    x = x.double().cpu()
    se_mean, se_var = math.sqrt(var / N_CHAINS), var * math.sqrt(2 / N_CHAINS)
    torch.testing.assert_close(x.mean(0), torch.tensor(MU, dtype=x.dtype), rtol=0, atol=5 * se_mean)
    torch.testing.assert_close(
        x.var(0), torch.full((2,), var, dtype=x.dtype), rtol=0, atol=5 * se_var
    )
    cpu = _cpu_samples(sampler).double()
    two = math.sqrt(2)  # two independent sample moments
    torch.testing.assert_close(x.mean(0), cpu.mean(0), rtol=0, atol=5 * two * se_mean)
    torch.testing.assert_close(x.var(0), cpu.var(0), rtol=0, atol=5 * two * se_var)


def test_a_checkpoint_written_on_the_device_resumes_on_the_cpu(device, tmp_path):
    """Two epochs on the device, two more resumed on the CPU from its last.pt, equal the four
    epochs of one uninterrupted CPU fit (exactly from the CPU; to fp32 rounding from CUDA)."""
    _fit(device, "32", max_epochs=2, ckpt_dir=tmp_path)
    state = load_checkpoint(tmp_path / "last.pt")
    assert all(t.device.type == "cpu" for t in state["model"].values())
    x, y = mlp_data(96)
    resumed = MLP(seed=7)  # other weights: the checkpoint's must replace them
    trainer = Trainer(
        max_epochs=4, batch_size=32, seed=0, device="cpu", progress=False, ckpt_dir=tmp_path
    )
    trainer.fit(resumed, (x, y), resume=True)
    assert [h["epoch"] for h in trainer.history][-2:] == [2, 3]
    reference, _ = _fit("cpu", "32", max_epochs=4)
    exact = device.type == "cpu"
    for name, value in reference.state_dict().items():
        got = resumed.state_dict()[name]
        assert got.device.type == "cpu"
        torch.testing.assert_close(
            got, value, rtol=0 if exact else 1e-4, atol=0 if exact else 1e-6, msg=name
        )
