"""DDP on CPU: 2 gloo processes launched by torchrun match one process with the same global
batch; rank 0 alone writes; its checkpoint loads in a single process; a job resumed mid-epoch
from it continues exactly as the uninterrupted job, every rank with its own RNG stream.

``EBM_TEST_DDP_DEVICE=cuda`` runs the same tests with one GPU per rank over nccl (``make
gpu-check`` does); they are then marked ``cuda`` and skip, saying why, without 2 GPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _train_models import MLP, PoisonedMLP, mlp_data
from torch import nn

from ebm.train import Trainer, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

DDP_DEVICE = os.environ.get("EBM_TEST_DDP_DEVICE", "cpu")
BACKEND = {"cpu": "gloo", "cuda": "nccl"}
if DDP_DEVICE not in BACKEND:
    raise ValueError(f"EBM_TEST_DDP_DEVICE must be one of {sorted(BACKEND)}, got {DDP_DEVICE!r}")
if DDP_DEVICE == "cuda":
    pytestmark = [
        pytest.mark.cuda,
        pytest.mark.skipif(
            torch.cuda.device_count() < 2,
            reason="nccl needs one GPU per rank: these tests start 2 ranks, "
            f"{torch.cuda.device_count()} GPU(s) visible",
        ),
    ]


class TwoPlayers(nn.Module):
    """Manual optimisation with data-dependent losses and two updates of player a per batch."""

    manual_optimization = True

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([3.0, -1.0]))
        self.b = nn.Parameter(torch.tensor([0.5, 0.5]))

    def training_step(self, batch, optimize):
        x, _ = batch
        for _ in range(2):
            optimize(((x[:, :2] * self.a).sum(-1) - 1).pow(2).mean(), index=0)
        loss_b = ((x[:, 2:] * self.b).sum(-1) + self.a.detach().sum()).pow(2).mean()
        optimize(loss_b, index=1)
        return {"loss_b": loss_b.detach()}

    def configure_optimizers(self):
        return [torch.optim.SGD([self.a], lr=0.05), torch.optim.Adam([self.b], lr=0.05)]


# A recipe-shaped script: parse_args -> data -> models -> Trainer.fit -> write_results.
SCRIPT = r"""
import sys
import pytest
import torch
sys.path.insert(0, {tests!r})
from _train_models import MLP, PoisonedMLP, mlp_data
from test_train_distributed import TwoPlayers
from ebm.recipe import is_main_process, parse_args, write_results
from ebm.train import Trainer

args = parse_args("DDP check")
x, y = mlp_data(64)
mlp = MLP(seed=0)
trainer = Trainer(max_epochs=2, batch_size=8, seed=3, device=args.device, progress=False,
                  ckpt_dir=args.out / "ckpt", log_every_n_steps=1)
trainer.fit(mlp, (x, y), val_data=(x, y))
players = TwoPlayers()
Trainer(max_epochs=2, batch_size=8, seed=3, device=args.device, progress=False).fit(players, (x, y))
y_bad = y.clone()
y_bad[5] = 99.0  # one poisoned sample: the global batch holding it is skipped
skipper = PoisonedMLP(seed=1)
skipping = Trainer(max_epochs=2, batch_size=8, seed=3, device=args.device, progress=False,
                   nan_policy="skip")
skipping.fit(skipper, (x, y_bad))
rank = torch.distributed.get_rank()
(args.out / f"rank{{rank}}.txt").write_text(
    f"{{trainer.world_size}} {{torch.distributed.get_backend()}} {{trainer.device.type}}")
if is_main_process():
    torch.save({{"mlp": mlp.state_dict(), "players": players.state_dict(),
                "skipper": skipper.state_dict(),
                "skipped": torch.tensor(skipping.history[-1]["skipped"])}}, args.out / "ddp.pt")
write_results(args.out, "ddp_check", {{"val_loss": trainer.history[-1]["val_loss"]}})
"""


def test_two_processes_under_torchrun_match_one_process(tmp_path):
    script = tmp_path / "ddp_check.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests")))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(script),
        "--quick",
        "--device",
        DDP_DEVICE,
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = f"2 {BACKEND[DDP_DEVICE]} {DDP_DEVICE}"  # world size, backend, device
    assert (tmp_path / "rank0.txt").read_text() == expected == (tmp_path / "rank1.txt").read_text()
    ddp = torch.load(tmp_path / "ddp.pt", map_location="cpu", weights_only=True)

    # the same runs in one process with the global batch 2 x 8
    x, y = mlp_data(64)
    mlp = MLP(seed=0)
    single = Trainer(max_epochs=2, batch_size=16, seed=3, device=DDP_DEVICE, progress=False)
    single.fit(mlp, (x, y), val_data=(x, y))
    players = TwoPlayers()
    Trainer(max_epochs=2, batch_size=16, seed=3, device=DDP_DEVICE, progress=False).fit(
        players, (x, y)
    )
    y_bad = y.clone()
    y_bad[5] = 99.0
    skipper = PoisonedMLP(seed=1)
    Trainer(
        max_epochs=2, batch_size=16, seed=3, device=DDP_DEVICE, progress=False, nan_policy="skip"
    ).fit(skipper, (x, y_bad))
    assert ddp["skipped"].item() == 2.0  # once per epoch, decided together by both ranks
    for model, key in ((mlp, "mlp"), (players, "players"), (skipper, "skipper")):
        for name, value in model.state_dict().items():
            torch.testing.assert_close(ddp[key][name], value.cpu(), rtol=1e-5, atol=1e-6)
    # players moved: the comparison is not between two untouched initialisations
    assert not torch.allclose(players.a.cpu(), torch.tensor([3.0, -1.0]))

    results = json.loads((tmp_path / "ddp_check.json").read_text())
    assert abs(results["val_loss"] - single.history[-1]["val_loss"]) < 1e-5
    # rank 0's checkpoint has plain parameter names and loads in this single process
    state = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert len(state["rng"]) == 2 and state["loop"]["world_size"] == 2
    fresh = MLP(seed=5)
    fresh.load_state_dict(state["model"])
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(value, ddp["mlp"][name], rtol=0, atol=0)
    assert len((tmp_path / "ckpt" / "metrics.csv").read_text().splitlines()) > 1


@pytest.mark.slow
def test_a_real_recipe_runs_under_torchrun(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(ROOT / "recipes" / "gan_toy.py"),
        "--quick",
        "--device",
        DDP_DEVICE,
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "gan_toy.json").is_file() and (tmp_path / "gan_toy_ring-8.png").is_file()


# Two torchrun jobs: the first stops mid-epoch (max_steps) after a checkpoint, the second resumes
# it; an uninterrupted job is the reference. Dropout draws from each rank's own global RNG.
RESUME_SCRIPT = r"""
import os
import sys
import torch
from torch import nn
sys.path.insert(0, {tests!r})
from _train_models import mlp_data
from ebm.recipe import parse_args
from ebm.train import Trainer


class DropoutMLP(nn.Module):
    def __init__(self, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g))

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


args = parse_args("DDP resume check")
x, y = mlp_data(64)  # 4 global batches of 2 x 8 per epoch


def fit(folder, seed, resume=False, **kw):
    model = DropoutMLP(seed)
    Trainer(max_epochs=3, batch_size=8, seed=3, device=args.device, progress=False,
            ckpt_dir=args.out / folder, ckpt_every_n_steps=5, **kw).fit(model, (x, y), resume=resume)
    return model


if os.environ["PHASE"] == "first":
    reference = fit("reference", seed=0)
    fit("interrupted", seed=0, max_steps=6)  # checkpoint at step 5, mid-epoch 1; stop at 6
    name, model = "reference", reference
else:
    torch.manual_seed(1000 + int(os.environ["RANK"]))  # another process: other RNG states
    name, model = "resumed", fit("interrupted", seed=9, resume=True)
torch.save({{k: v.cpu() for k, v in model.state_dict().items()}},
           args.out / f"{{name}}_rank{{os.environ['RANK']}}.pt")
"""


def test_ddp_resume_mid_epoch_matches_the_uninterrupted_run(tmp_path):
    script = tmp_path / "ddp_resume.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(ROOT / "tests")))
    for phase in ("first", "second"):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PHASE": phase,
        }
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
        cmd += [str(script), "--device", DDP_DEVICE, "--out", str(tmp_path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        if phase == "first":
            # the interrupted job's last checkpoint is the one of step 6 (end of fit), mid-epoch 1
            state = load_checkpoint(tmp_path / "interrupted" / "last.pt")
            assert state["loop"]["step"] == 6 and state["loop"]["batch"] == 2
            assert len(state["rng"]) == 2 and not torch.equal(
                state["rng"][0]["torch"], state["rng"][1]["torch"]
            )
    for rank in (0, 1):
        reference = torch.load(tmp_path / f"reference_rank{rank}.pt", weights_only=True)
        resumed = torch.load(tmp_path / f"resumed_rank{rank}.pt", weights_only=True)
        for name, value in reference.items():
            assert torch.equal(value, resumed[name]), (rank, name)
