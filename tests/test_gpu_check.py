"""tools/gpu_check.py (``make gpu-check``): the plan of the full CUDA check, the stage runner
(timeouts, budgets, failures that do not stop the rest), the report, the refusal without CUDA,
and the whole pipeline end to end in its CPU dry run, so the script cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def _option(cmd: list[str], flag: str) -> str:
    """The value after the last ``flag`` in ``cmd``."""
    return cmd[len(cmd) - 1 - cmd[::-1].index(flag) + 1]


def test_the_full_check_plans_every_stage_on_cuda(tmp_path):
    args = gpu_check.parse_args(["--out", str(tmp_path), "--workers", "4"])
    assert args.device == "cuda" and not args.dry_run
    stages = gpu_check.plan(args, {"device": "cuda", "bf16_supported": True})
    assert list(stages) == ["tests", "recipes", "ddp", "bench"]

    cuda_tests, suite = stages["tests"][1]
    assert _option(cuda_tests.cmd, "-m") == "cuda and not slow"
    assert _option(suite.cmd, "-m") == "not slow and not cuda" and _option(suite.cmd, "-n") == "4"
    assert "tests/" not in " ".join(suite.cmd)  # the whole suite, not a file

    # every recipe run_all knows, in both precisions, on cuda, into the check's folder
    from recipes.run_all import recipe_names

    recipes = stages["recipes"][1]
    assert sorted((j.meta["recipe"], j.meta["precision"]) for j in recipes) == sorted(
        (name, p) for name in recipe_names() for p in ("bf16", "16-mixed")
    )
    for job in recipes:
        cmd = job.cmd
        assert cmd[1] == f"recipes/{job.meta['recipe']}.py" and "--quick" in cmd
        assert _option(cmd, "--device") == "cuda"
        assert _option(cmd, "--precision") == job.meta["precision"]
        assert Path(_option(cmd, "--out")) == job.outputs
        assert job.outputs == tmp_path / "recipes" / job.meta["precision"] / job.meta["recipe"]
    uses = {j.meta["recipe"]: j.meta["trainer_precision"] for j in recipes}
    assert uses["vae_digits"] and uses["ebm_2d"] and not uses["loss_shapes"]

    (ddp,) = stages["ddp"][1]
    assert ddp.env == {"EBM_TEST_DDP_DEVICE": "cuda"} and "nccl" in ddp.name
    assert "tests/test_train_distributed.py" in ddp.cmd and "-k" not in ddp.cmd

    bench = stages["bench"][1]
    assert [j.meta["benchmark"] for j in bench] == gpu_check.benchmark_names()
    for job in bench:  # never over the committed benchmarks/results/
        assert Path(_option(job.cmd, "--out")) == tmp_path / "bench"

    # a GPU without bf16: those runs are skipped with the reason, 16-mixed still runs
    stages = gpu_check.plan(args, {"device": "cuda", "bf16_supported": False})
    skips = {j.meta["precision"]: j.skip for j in stages["recipes"][1]}
    assert "bf16 support" in skips["bf16"] and skips["16-mixed"] is None


def test_bad_arguments_are_refused(capsys):
    for argv, message in (
        (["--device", "cpu"], "only with --dry-run"),
        (["--timeout-scale", "0"], "--timeout-scale"),
        (["--recipes", "no_such_recipe"], "no_such_recipe"),
    ):
        with pytest.raises(SystemExit) as err:
            gpu_check.parse_args(argv)
        assert err.value.code == 2 and message in capsys.readouterr().err, argv


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="boom"/></testcase>
<testcase classname="tests.test_b" name="test_gpu[cuda]"><skipped message="needs a GPU"/></testcase>
<testcase classname="tests.test_b" name="test_gpu2[cuda]"><skipped message="needs a GPU"/></testcase>
</testsuite></testsuites>"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to see processes")
def test_stages_run_past_timeouts_and_failures_and_the_report_says_so(tmp_path):
    py = sys.executable
    pid_file = tmp_path / "grandchild.pid"
    spawner = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(120)
    """)
    junit = tmp_path / "fake.xml"
    fake_pytest = (
        f"open({str(junit)!r}, 'w').write({JUNIT!r}); print('1 failed'); raise SystemExit(1)"
    )
    bench_row = {"name": "op (8, 8)", "ours": "1.00 ms", "peer": "2.00 ms", "ratio": 0.5}
    bench_json = json.dumps({"machine": "a machine", "rows": [{**bench_row, "target": "<= 1"}]})
    (tmp_path / "bench").mkdir()
    write_bench = f"open({str(tmp_path / 'bench' / 'fine.json')!r}, 'w').write({bench_json!r})"
    bench_meta = {"benchmark": "fine"}
    (tmp_path / "r").mkdir()  # a recipe that exits 0 but wrote a NaN: a failure
    nan_json = json.dumps({"beta": {"inf": 1.0}, "loss": "nan", "xs": [1.0, "-inf"], "n": 3})
    nan_meta = {"recipe": "nan", "precision": "bf16", "trainer_precision": True}
    write_nan = f"open({str(tmp_path / 'r' / 'x.json')!r}, 'w').write({nan_json!r})"
    J = gpu_check.Job
    stages = {
        "slow": (
            2.0,  # the budget: the sleeper times out at 2 s, the next job is never started
            [
                J("slow", "sleeper", [py, "-c", spawner], timeout=60),
                J("slow", "never", [py, "-c", "print('ran')"], timeout=60),
            ],
        ),
        "tests": (60.0, [J("tests", "fake pytest", [py, "-c", fake_pytest], 60, junit=junit)]),
        "recipes": (
            60.0,
            [J("recipes", "nan", [py, "-c", write_nan], 60, meta=nan_meta, outputs=tmp_path / "r")],
        ),
        "bench": (60.0, [J("bench", "fine", [py, "-c", write_bench], 60, meta=bench_meta)]),
    }
    start = time.perf_counter()
    results = gpu_check.run_stages(stages, tmp_path, dict(os.environ))
    assert time.perf_counter() - start < 30
    by_name = {r.name: r for r in results}
    assert by_name["sleeper"].status == "timeout" and by_name["sleeper"].returncode is None
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild), "the timed-out job's own child process survived"
    assert by_name["never"].status == "skipped" and "budget" in by_name["never"].detail
    fake = by_name["fake pytest"]
    assert fake.status == "failed" and fake.returncode == 1
    assert fake.counts == {"passed": 1, "failed": 1, "errors": 0, "skipped": 2}
    assert fake.skip_reasons == {"needs a GPU": 2}
    assert fake.failures == ["tests.test_a::test_bad"]
    assert by_name["fine"].status == "passed"
    assert by_name["nan"].status == "failed" and by_name["nan"].returncode == 0
    assert by_name["nan"].detail == "non-finite numbers in its results: x.json: loss, xs[1]"
    assert by_name["never"].log is None and not (tmp_path / "logs" / "slow-never.log").exists()

    machine = {"device": "cuda", "torch": torch.__version__, "gpus": ["A GPU (80 GiB)"]}
    md = gpu_check.write_report(tmp_path, machine, results, dry_run=False).read_text()
    assert "**FAILED**: 3 of 5 jobs failed or timed out, 1 skipped (reasons below)." in md
    assert "| GPU | A GPU (80 GiB) |" in md and "DRY RUN" not in md
    assert "| tests | 1 | 0 | 1 | 0 | 0 | 1 | 1 | 0 | 2 |" in md
    assert "FAILED: `tests.test_a::test_bad`" in md and "skipped (2): needs a GPU" in md
    assert "| nan | **FAILED** (rc 0), " in md and "| - | yes |" in md
    assert "Machine: a machine" in md
    assert "| fine | op (8, 8) | 1.00 ms | 2.00 ms | 0.50 | <= 1 |" in md
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "FAILED" and len(report["jobs"]) == 5
    assert report["benchmarks"] == [
        {"benchmark": "fine", "machine": "a machine", **bench_row, "target": "<= 1"}
    ]
    assert report["stages"]["slow"] == {
        "jobs": 2,
        "passed": 0,
        "failed": 0,
        "timeout": 1,
        "skipped": 1,
    }


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_check_refuses(tmp_path):
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("no CUDA device: torch.cuda.is_available() is False")
    assert "--device cpu --dry-run" in proc.stderr
    assert not (tmp_path / "REPORT.md").exists()


def test_the_cpu_dry_run_of_the_recipes_stage(tmp_path):
    """The script end to end (arguments, machine, stage, report, exit status) on the CPU, with
    the fastest recipe; the next test runs every stage."""
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--dry-run"]
    cmd += ["--stages", "recipes", "--recipes", "loss_shapes", "--out", str(tmp_path)]
    (tmp_path / "logs").mkdir(parents=True)
    (tmp_path / "logs" / "stale.log").write_text("from an earlier run")
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "logs" / "stale.log").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASSED" and report["dry_run"]
    assert report["machine"]["torch"] == torch.__version__
    assert [(j["name"], j["status"]) for j in report["jobs"]] == [
        ("loss_shapes bf16", "passed"),
        ("loss_shapes 16-mixed", "passed"),
    ]
    md = (tmp_path / "REPORT.md").read_text()
    assert "DRY RUN on `cpu`" in md and "**PASSED**: no failure." in md
    assert "| loss_shapes | ok, " in md and "| no (no Trainer fit) |" in md


@pytest.mark.slow
def test_the_cpu_dry_run_goes_through_every_stage(tmp_path):
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--dry-run"]
    cmd += ["--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASSED" and report["dry_run"]
    status = {(j["stage"], j["name"]): j["status"] for j in report["jobs"]}
    assert status == {
        ("tests", "tests marked cuda"): "skipped",  # no GPU here: every one skips, with why
        ("tests", "the rest of the suite (dry run: a subset)"): "passed",
        ("recipes", "ellipse_latent bf16"): "passed",
        ("recipes", "ellipse_latent 16-mixed"): "passed",
        ("ddp", "torchrun, 2 ranks, gloo"): "passed",
        ("bench", "losses"): "passed",
    }
    for precision in ("bf16", "16-mixed"):
        assert (
            tmp_path / "recipes" / precision / "ellipse_latent" / "ellipse_latent.json"
        ).is_file()
    assert [row["benchmark"] for row in report["benchmarks"]] == ["losses", "losses"]
    md = (tmp_path / "REPORT.md").read_text()
    assert "DRY RUN on `cpu`" in md and "| ellipse_latent | ok, " in md
    assert "| losses | nll_loss forward (65536, 10) |" in md
