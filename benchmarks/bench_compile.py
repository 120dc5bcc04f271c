"""torch.compile (issue 18, item 7): ``compile=True`` against eager, interleaved, on CPU.

- Langevin, 1024 chains × 200 steps at d = 32, on an MLP energy (d→128→128→1, SiLU), where
  eager already takes the fused layer-chain gradient, and on a residual MLP (a skip
  connection: eager takes autograd, compile takes ``torch.func.grad``);
- parallel tempering (MALA moves, 4 inverse temperatures 1, 1/2, 1/4, 1/8) of 256 chains × 200
  steps on the same residual MLP;
- one Trainer epoch (batch 128, Adam, in-memory synthetic data) of a small MLP classifier
  (64→256→256→10, cross-entropy, 8192 samples), of the MNIST VAE (``ebm.models.VAE``
  784→400→20, 4096 images in [0, 1]) and of ``ebm.models.Diffusion`` (2-d data, three hidden
  layers of 128, T = 1000, 8192 points, batch 512).

Each row reports the first compiled call (compilation included) apart from the steady state:
``compile_s`` = first compiled call − the median later compiled call. The steady state is the
median of interleaved calls (compiled, eager, alternating), ratio = compiled / eager (below 1:
compile is faster). ``break_even_steps``: the sampler steps (or training steps) after which the
compilation has paid for itself (compile_s / time saved per step; null when compile is not
faster). Each row records the 1-minute load average before and after: the machine is shared,
read the ratios, not the absolute times. No GPU was at hand when these numbers were taken; on a
machine with CUDA (``make gpu-check``) every case runs on the GPU, each timed call ending in a
``torch.cuda.synchronize()``.

The run compiles into a fresh, empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` set to a new
temporary folder unless already set), so ``first_call_s`` is a cold compile, what a script pays
the first time; a later process finds the cache on disk and compiles faster. Run it with
``OMP_NUM_THREADS=1`` on a shared machine (two threads waiting on each other's OpenMP barriers
swung single calls by 10×, see ``bench_langevin_user``).
"""

from __future__ import annotations

import math
import os
import tempfile

import torch
from torch import nn

from benchmarks.bench_langevin_user import ResidualMLP, UserMLP
from benchmarks.timing import compare, spread, time_once
from ebm.sampling import langevin, parallel_tempering
from ebm.train import Trainer

CHAINS, D, STEPS, STEP = 1024, 32, 200, 0.01
REPEATS = 5
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _synced(fn):
    """``fn`` then a device sync, so the wall clock covers queued GPU work."""

    def call():
        out = fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize(DEVICE)
        return out

    return call


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _row(name, first, compiled, eager, n_steps, before) -> dict:
    r = compare(_synced(compiled), _synced(eager), repeats=REPEATS, warmup=1)
    compile_s = max(first - r["ours_s"], 0.0)
    saved = (r["peer_s"] - r["ours_s"]) / n_steps  # seconds per step
    return {
        "name": name,
        "ours": f"{_ms(r['ours_s'])} (compiled; first call {first:.1f} s)",
        "peer": f"{_ms(r['peer_s'])} (eager)",
        "ratio": r["ratio"],
        "target": "< 1 to be worth it",
        "compiled_s": r["ours_s"],
        "eager_s": r["peer_s"],
        "compiled_spread_s": spread(r["ours_times"]),
        "eager_spread_s": spread(r["peer_times"]),
        "first_call_s": first,
        "compile_s": compile_s,
        "steps_per_call": n_steps,
        "break_even_steps": math.ceil(compile_s / saved) if saved > 0 else None,
        "load": [before, _load()],
        "device": str(DEVICE),
    }


def _sampler_row(label: str, energy: nn.Module) -> dict:
    x0 = torch.randn(CHAINS, D, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    energy = energy.to(DEVICE)

    def compiled():
        return langevin(energy, x0, STEPS, STEP, compile=True)

    def eager():
        return langevin(energy, x0, STEPS, STEP)

    before = _load()
    first = time_once(_synced(compiled))
    return _row(
        f"Langevin, {label} d={D}, {CHAINS} chains x {STEPS} steps",
        first,
        compiled,
        eager,
        STEPS,
        before,
    )


def _tempering_row(energy: nn.Module) -> dict:
    x0 = torch.randn(256, D, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    energy = energy.to(DEVICE)
    betas = (1.0, 0.5, 0.25, 0.125)

    def compiled():
        return parallel_tempering(energy, x0, betas, STEPS, STEP, compile=True)

    def eager():
        return parallel_tempering(energy, x0, betas, STEPS, STEP)

    before = _load()
    first = time_once(_synced(compiled))
    return _row(
        f"parallel tempering (MALA), residual MLP d={D}, 4 x 256 chains x {STEPS} steps",
        first,
        compiled,
        eager,
        STEPS,
        before,
    )


class _Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )

    def training_step(self, batch):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _vae():
    from ebm.models import VAE
    from ebm.models.vae import mlp_decoder, mlp_encoder

    return VAE(mlp_encoder((784,), 20, (400,)), mlp_decoder((784,), 20, (400,)), 20, lr=1e-3)


def _diffusion():
    from ebm.models import Diffusion

    return Diffusion(2, hidden=(128, 128, 128), T=1000)


def _trainer_row(label: str, make, data, batch: int, n: int) -> dict:
    torch.manual_seed(0)
    compiled_model, eager_model = make(), make()

    def epoch(model, compile):
        def fit():
            Trainer(
                max_epochs=1,
                batch_size=batch,
                device=DEVICE,
                seed=0,
                progress=False,
                drop_last=True,
                compile=compile,
            ).fit(model, data)

        return fit

    before = _load()
    first = time_once(_synced(epoch(compiled_model, True)))
    return _row(
        f"Trainer epoch, {label}, {n // batch} steps of batch {batch}",
        first,
        epoch(compiled_model, True),
        epoch(eager_model, False),
        n // batch,
        before,
    )


def run() -> list[dict]:
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_compile_"))
    torch.manual_seed(0)
    rows = [
        _sampler_row("MLP energy (eager: fused gradient)", UserMLP(D)),
        _sampler_row("residual MLP (eager: autograd)", ResidualMLP(D)),
        _tempering_row(ResidualMLP(D)),
    ]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8192, 64, generator=g), torch.randint(10, (8192,), generator=g)
    rows.append(_trainer_row("MLP classifier 64-256-256-10", _Classifier, (x, y), 128, 8192))
    images = torch.rand(4096, 784, generator=g)
    rows.append(_trainer_row("MNIST VAE 784-400-20", _vae, images, 128, 4096))
    points = torch.randn(8192, 2, generator=g)
    rows.append(_trainer_row("Diffusion 2-d, 3x128, T=1000", _diffusion, points, 512, 8192))
    return rows
