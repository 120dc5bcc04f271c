"""Everything that needs a GPU, in one run, written to one report: ``make gpu-check``.

On a machine with CUDA it runs four stages, each in its own processes, with timeouts; a failure
in one never stops the others:

- ``tests``: the tests marked ``cuda`` (``pytest -m cuda``), then the rest of the suite
  (``-m "not slow and not cuda"``; ``--slow`` includes the slow tests);
- ``recipes``: every recipe's quick mode with ``--device cuda`` in bf16 and in 16-mixed;
- ``ddp``: tests/test_train_distributed.py with ``EBM_TEST_DDP_DEVICE=cuda`` (2 ranks, nccl;
  they skip, saying why, on a machine with fewer than 2 GPUs);
- ``bench``: ``python -m benchmarks NAME --out <out>/bench`` for every benchmark.

It writes ``<out>/REPORT.md`` and ``<out>/report.json`` (default out: build/gpu-check) with the
machine, each stage's counts, each recipe x precision result and time, the DDP result and the
benchmark table; each job's full output is in ``<out>/logs/``. The exit status is 0 when nothing
failed or timed out, 1 otherwise, 2 when it refuses to start (no CUDA device, bad arguments).

Without CUDA it refuses. ``--dry-run`` runs a tiny subset of every stage instead (on the CPU with
``--device cpu``): it checks the pipeline (stage runner, timeouts, report), not the GPU paths.

    python tools/gpu_check.py                            # the full check, on CUDA
    python tools/gpu_check.py --device cpu --dry-run     # the pipeline, on the CPU, in ~1 min
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "gpu-check"
STAGES = ("tests", "recipes", "ddp", "bench")
PRECISIONS = ("bf16", "16-mixed")
FAILED = ("failed", "timeout", "error")
# what --dry-run runs of each stage: the fastest recipe with a Trainer fit, the fastest benchmark
DRY_RECIPES = ("ellipse_latent",)
DRY_BENCHMARKS = ("losses",)


@dataclass
class Job:
    """One command of a stage. junit: where pytest writes its XML (None: not a pytest run)."""

    stage: str
    name: str
    cmd: list[str]
    timeout: float
    env: dict[str, str] = field(default_factory=dict)
    junit: Path | None = None
    skip: str | None = None  # a reason not to run it at all
    meta: dict = field(default_factory=dict)  # e.g. recipe and precision, for the report
    outputs: Path | None = None  # a folder of result JSON whose numbers must all be finite


@dataclass
class Result:
    stage: str
    name: str
    status: str  # passed | failed | timeout | skipped | error
    seconds: float
    command: str
    returncode: int | None = None
    log: str | None = None
    detail: str = ""  # a skip reason, or the last line of a failure's output
    counts: dict | None = None  # pytest: passed, failed, errors, skipped
    skip_reasons: dict | None = None  # pytest: reason -> number of tests
    failures: list | None = None  # pytest: failing test ids
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# running


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a job and everything it started (pytest-xdist workers, torchrun ranks)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def non_finite(value, path: str = "") -> list[str]:
    """The key paths of a result JSON whose values are NaN or ±inf (ebm.recipe writes them as
    the strings "nan", "inf", "-inf"); keys such as β = "inf" are not values."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{path}[{i}]")]
    if value in ("nan", "inf", "-inf") or (isinstance(value, float) and not math.isfinite(value)):
        return [path]
    return []


def _json_non_finite(path: Path) -> list[str]:
    try:
        return non_finite(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        return [f"(unreadable: {err})"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def run_job(job: Job, log_dir: Path, base_env: dict[str, str]) -> Result:
    """Run one job in its own process group, its output to ``log_dir``; never raises."""
    command = shlex.join(job.cmd)
    if job.skip is not None:
        return Result(job.stage, job.name, "skipped", 0.0, command, detail=job.skip, meta=job.meta)
    log = log_dir / f"{job.stage}-{_slug(job.name)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if job.junit is not None:
        job.junit.parent.mkdir(parents=True, exist_ok=True)
        job.junit.unlink(missing_ok=True)
    start = time.perf_counter()
    returncode = None
    with open(log, "w") as f:
        f.write(f"$ {command}\n")
        f.flush()
        try:
            proc = subprocess.Popen(
                job.cmd,
                cwd=ROOT,
                env={**base_env, **job.env},
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            return Result(job.stage, job.name, "error", 0.0, command, log=str(log), detail=str(err))
        try:
            returncode = proc.wait(timeout=job.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
    seconds = round(time.perf_counter() - start, 1)
    result = Result(job.stage, job.name, "", seconds, command, returncode, str(log), meta=job.meta)
    if returncode is None:
        result.status = "timeout"
        result.detail = f"stopped after {job.timeout:.0f} s"
    elif returncode == 0:
        result.status = "passed"
    else:
        result.status = "failed"
        result.detail = _last_line(log)
    if job.junit is not None:
        _read_junit(job.junit, result)
    if result.status == "passed" and job.outputs is not None:
        bad = {
            str(f.relative_to(job.outputs)): paths
            for f in sorted(job.outputs.rglob("*.json"))
            if (paths := _json_non_finite(f))
        }
        if bad:
            result.status = "failed"
            result.detail = "non-finite numbers in its results: " + "; ".join(
                f"{name}: {', '.join(paths[:5])}" + (" ..." if len(paths) > 5 else "")
                for name, paths in bad.items()
            )
    return result


def _read_junit(path: Path, result: Result) -> None:
    """Fill a pytest job's counts from its junit XML; no tests run is a failure."""
    if not path.is_file():
        if result.status == "passed":
            result.status, result.detail = "error", f"pytest wrote no report at {path}"
        return
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:  # pytest stopped while writing it
        if result.status == "passed":
            result.status = "error"
        result.detail = f"unreadable pytest report {path}: {err}"
        return
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped"), 0)
    reasons: dict[str, int] = {}
    failures = []
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failures.append(test_id)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failures.append(test_id)
        elif (skipped := case.find("skipped")) is not None:
            counts["skipped"] += 1
            reason = (skipped.get("message") or "").strip() or "(no reason given)"
            reasons[reason] = reasons.get(reason, 0) + 1
        else:
            counts["passed"] += 1
    result.counts, result.skip_reasons, result.failures = counts, reasons, failures
    if result.status == "failed" and result.returncode == 5:
        result.detail = "pytest collected no tests"
    if result.status == "passed" and sum(counts.values()) == 0:
        result.status, result.detail = "failed", "pytest ran no tests"
    elif result.status == "passed" and counts["skipped"] == sum(counts.values()):
        result.status = "skipped"
        result.detail = "; ".join(reasons)


def run_stages(stages: dict[str, tuple[float, list[Job]]], out: Path, base_env) -> list[Result]:
    """Run every stage's jobs in order. A stage's budget (seconds) bounds its jobs' timeouts:
    once spent, its remaining jobs are skipped. Nothing stops the other stages."""
    results = []
    for stage, (budget, jobs) in stages.items():
        spent = 0.0
        for job in jobs:
            left = budget - spent
            if left <= 0 and job.skip is None:
                job.skip = f"the {stage} stage's budget of {budget:.0f} s was spent"
            job.timeout = min(job.timeout, max(left, 1.0))
            print(f"[gpu-check] {stage}: {job.name} ...", end=" ", flush=True)
            result = run_job(job, out / "logs", base_env)
            spent += result.seconds
            print(f"{result.status} ({result.seconds:.1f} s)", flush=True)
            results.append(result)
    return results


# ---------------------------------------------------------------------------------------------
# the plan


def _pytest(python: str, junit: Path) -> list[str]:
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={junit}"]


def recipe_names() -> list[str]:
    """The recipes ``recipes/run_all.py`` runs: ``recipes/<name>.py``, no underscore, not itself."""
    return sorted(
        p.stem
        for p in (ROOT / "recipes").glob("*.py")
        if not p.stem.startswith("_") and p.stem != "run_all"
    )


def benchmark_names() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


def plan(args, machine: dict) -> dict[str, tuple[float, list[Job]]]:
    """The stages to run: {stage: (budget in seconds, jobs)}."""
    py, out, dev, scale = sys.executable, args.out, args.device, args.timeout_scale
    junit = out / "junit"
    stages: dict[str, tuple[float, list[Job]]] = {}

    if "tests" in args.stages:
        if args.dry_run:
            selection = ["tests/test_devices.py"]
            rest = [*selection, "-m", "not cuda", "-k", "sampler and langevin or checkpoint"]
        else:
            selection = []
            workers = ["-n", str(args.workers)] if args.workers > 0 else []
            rest = [*workers, "-m", "not cuda" if args.slow else "not slow and not cuda"]
        cuda_marked = "cuda" if args.slow or args.dry_run else "cuda and not slow"
        stages["tests"] = (
            3600 * scale,
            [
                Job(
                    "tests",
                    "tests marked cuda",
                    [*_pytest(py, junit / "cuda.xml"), "-m", cuda_marked, *selection],
                    900 * scale,
                    junit=junit / "cuda.xml",
                ),
                Job(
                    "tests",
                    "the rest of the suite" + (" (dry run: a subset)" if args.dry_run else ""),
                    [*_pytest(py, junit / "suite.xml"), *rest],
                    2700 * scale,
                    env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                    junit=junit / "suite.xml",
                ),
            ],
        )

    if "recipes" in args.stages:
        names = args.recipes or (list(DRY_RECIPES) if args.dry_run else recipe_names())
        no_bf16 = None
        if dev == "cuda" and not machine.get("bf16_supported", True):
            no_bf16 = "this GPU has no bf16 support (torch.cuda.is_bf16_supported() is False)"
        jobs = []
        for name in names:
            source = (ROOT / "recipes" / f"{name}.py").read_text()
            uses_precision = "precision=args.precision" in source
            for precision in PRECISIONS:
                folder = out / "recipes" / precision / name
                cmd = [py, f"recipes/{name}.py", "--quick", "--device", dev]
                cmd += ["--precision", precision, "--out", str(folder)]
                jobs.append(
                    Job(
                        "recipes",
                        f"{name} {precision}",
                        cmd,
                        900 * scale,
                        skip=no_bf16 if precision == "bf16" else None,
                        outputs=folder,
                        meta={
                            "recipe": name,
                            "precision": precision,
                            "trainer_precision": uses_precision,
                        },
                    )
                )
        stages["recipes"] = (3 * 3600 * scale, jobs)

    if "ddp" in args.stages:
        cmd = [*_pytest(py, junit / "ddp.xml"), "tests/test_train_distributed.py"]
        if args.dry_run:
            cmd += ["-k", "match_one_process"]
        backend = "nccl" if dev == "cuda" else "gloo"
        stages["ddp"] = (
            1800 * scale,
            [
                Job(
                    "ddp",
                    f"torchrun, 2 ranks, {backend}",
                    cmd,
                    1800 * scale,
                    env={"EBM_TEST_DDP_DEVICE": dev},
                    junit=junit / "ddp.xml",
                )
            ],
        )

    if "bench" in args.stages:
        names = list(DRY_BENCHMARKS) if args.dry_run else benchmark_names()
        jobs = [
            Job(
                "bench",
                name,
                [py, "-m", "benchmarks", name, "--out", str(out / "bench")],
                1200 * scale,
                meta={"benchmark": name},
            )
            for name in names
        ]
        stages["bench"] = (3600 * scale, jobs)
    return stages


# ---------------------------------------------------------------------------------------------
# the machine


def _run_text(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def machine_info(device: str) -> dict:
    """The machine and software the report describes."""
    import torch

    commit = _run_text(["git", "rev-parse", "HEAD"])
    dirty = _run_text(["git", "status", "--porcelain", "--untracked-files=no"])
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (commit or "unknown") + (" (with uncommitted changes)" if dirty else ""),
        "device": device,
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if device == "cuda" and torch.cuda.is_available():
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(
                f"{props.name} ({props.total_memory / 2**30:.0f} GiB, "
                f"compute capability {props.major}.{props.minor})"
            )
        info["gpus"] = gpus
        info["bf16_supported"] = bool(torch.cuda.is_bf16_supported())
        info["cudnn"] = torch.backends.cudnn.version()
        try:
            version = torch.cuda.nccl.version()  # a tuple in recent torch, an int in old ones
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else version
        except (AttributeError, RuntimeError):  # a build without NCCL
            info["nccl"] = None
        driver = _run_text(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        info["driver"] = driver.splitlines()[0] if driver else "unknown (nvidia-smi not found)"
    return info


def no_cuda_reason() -> str | None:
    """Why this machine cannot run the check on CUDA, or None if it can."""
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        why = f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch"
    elif os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        why = "CUDA_VISIBLE_DEVICES is empty"
    else:
        why = (
            f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU or no working "
            "driver (nvidia-smi tells more)"
        )
    return f"torch.cuda.is_available() is False: {why}"


# ---------------------------------------------------------------------------------------------
# the report


def _cell(result: Result | None) -> str:
    if result is None:
        return "-"
    if result.status == "passed":
        return f"ok, {result.seconds:.1f} s"
    if result.status == "skipped":
        return "skipped"
    if result.status == "timeout":
        return f"TIMEOUT ({result.detail})"
    return f"**{result.status.upper()}** (rc {result.returncode}), {result.seconds:.1f} s"


def _bench_rows(out: Path, results: list[Result]) -> list[dict]:
    rows = []
    for r in results:
        if r.stage != "bench" or r.status != "passed":
            continue
        path = out / "bench" / f"{r.meta['benchmark']}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            for row in saved.get("rows", []):
                rows.append({"benchmark": r.meta["benchmark"], "machine": saved["machine"], **row})
    return rows


def summary(results: list[Result]) -> dict[str, dict[str, int]]:
    """Per stage: jobs by status, and pytest's test counts summed."""
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(
            r.stage, dict.fromkeys(("jobs", "passed", "failed", "timeout", "skipped"), 0)
        )
        row["jobs"] += 1
        row[r.status if r.status != "error" else "failed"] += 1
        for key, n in (r.counts or {}).items():
            row[f"tests {key}"] = row.get(f"tests {key}", 0) + n
    return table


def write_report(out: Path, machine: dict, results: list[Result], dry_run: bool) -> Path:
    """Write ``out/REPORT.md`` and ``out/report.json``; return the Markdown's path."""
    failed = [r for r in results if r.status in FAILED]
    verdict = "FAILED" if failed else "PASSED"
    bench = _bench_rows(out, results)
    stages = summary(results)
    (out / "report.json").write_text(
        json.dumps(
            {
                "verdict": verdict,
                "dry_run": dry_run,
                "machine": machine,
                "stages": stages,
                "jobs": [asdict(r) for r in results],
                "benchmarks": bench,
            },
            indent=2,
        )
        + "\n"
    )
    md = ["# GPU check report", ""]
    what = f"{len(failed)} of {len(results)} jobs failed or timed out" if failed else "no failure"
    skipped = sum(r.status == "skipped" for r in results)
    what += f", {skipped} skipped (reasons below)" if skipped else ""
    md.append(f"**{verdict}**: {what}.")
    md.append("")
    if dry_run:
        md += [
            f"> DRY RUN on `{machine['device']}`: a tiny subset of each stage, to check the "
            "pipeline. It says nothing about the GPU paths.",
            "",
        ]
    md += ["## Machine", "", "| | |", "|---|---|"]
    labels = {
        "gpus": "GPU",
        "driver": "NVIDIA driver",
        "cuda_build": "CUDA (torch build)",
        "cudnn": "cuDNN",
        "nccl": "NCCL",
        "bf16_supported": "bf16 supported",
        "torch": "torch",
        "python": "Python",
        "platform": "platform",
        "cpus": "CPU cores",
        "date": "date",
        "commit": "commit",
    }
    for key, label in labels.items():
        if key in machine:
            value = machine[key]
            value = "; ".join(value) if isinstance(value, list) else value
            md.append(f"| {label} | {value if value is not None else '-'} |")
    md += ["", "## Stages", ""]
    columns = ["jobs", "passed", "failed", "timeout", "skipped"]
    test_columns = ["tests passed", "tests failed", "tests errors", "tests skipped"]
    md.append("| stage | " + " | ".join(columns + test_columns) + " | seconds |")
    md.append("|---" * (len(columns) + len(test_columns) + 2) + "|")
    for stage, row in stages.items():
        seconds = sum(r.seconds for r in results if r.stage == stage)
        cells = [str(row.get(c, 0)) for c in columns]
        cells += [str(row[c]) if c in row else "-" for c in test_columns]
        md.append(f"| {stage} | " + " | ".join(cells) + f" | {seconds:.0f} |")

    for heading, stage in (("Tests", "tests"), ("DDP (torchrun, 2 ranks)", "ddp")):
        jobs = [r for r in results if r.stage == stage]
        if not jobs:
            continue
        md += ["", f"## {heading}", ""]
        for r in jobs:
            counts = ", ".join(f"{n} {k}" for k, n in (r.counts or {}).items()) or "no counts"
            md.append(f"- **{r.name}**: {r.status}, {counts}, {r.seconds:.0f} s")
            for reason, n in sorted((r.skip_reasons or {}).items(), key=lambda kv: -kv[1])[:8]:
                md.append(f"  - skipped ({n}): {reason}")
            for test_id in (r.failures or [])[:30]:
                md.append(f"  - FAILED: `{test_id}`")

    recipes = [r for r in results if r.stage == "recipes"]
    if recipes:
        device = machine["device"]
        md += ["", f"## Recipes (quick mode, `--device {device}`)", ""]
        md.append("| recipe | " + " | ".join(PRECISIONS) + " | Trainer fits use --precision |")
        md.append("|---" * (len(PRECISIONS) + 2) + "|")
        cells: dict[str, dict[str, Result]] = {}
        for r in recipes:
            cells.setdefault(r.meta["recipe"], {})[r.meta["precision"]] = r
        for name, row in cells.items():
            uses = next(iter(row.values())).meta["trainer_precision"]
            line = " | ".join(_cell(row.get(p)) for p in PRECISIONS)
            md.append(f"| {name} | {line} | {'yes' if uses else 'no (no Trainer fit)'} |")

    if any(r.stage == "bench" for r in results):
        md += ["", "## Benchmarks (absolute times, medians)", ""]
        md.append(
            "Ours against a peer, interleaved in one process (`python -m benchmarks`). They pin "
            '`device="cpu"`: these are this machine\'s CPU times, not GPU times.'
        )
        md.append("")
        if bench:
            md.append(f"Machine: {bench[0]['machine']}")
            md += ["", "| benchmark | comparison | ours | peer | ratio | target |"]
            md.append("|---|---|---|---|---|---|")
            for row in bench:
                ratio = row.get("ratio")
                ratio = f"{ratio:.2f}" if isinstance(ratio, (int, float)) else "-"
                md.append(
                    f"| {row['benchmark']} | {row['name']} | {row.get('ours', '')} | "
                    f"{row.get('peer', '')} | {ratio} | {row.get('target', '')} |"
                )
        for r in (r for r in results if r.stage == "bench" and r.status != "passed"):
            md.append(f"- {r.name}: {_cell(r)}")

    if failed or any(r.status == "skipped" for r in results):
        md += ["", "## Failures and skips", ""]
        for r in results:
            if r.status in FAILED or r.status == "skipped":
                md.append(f"- {r.stage} / **{r.name}**: {r.status}: {r.detail or '-'}")
                if r.status in FAILED:
                    md.append(f"  - command: `{r.command}`")
                    if r.log:
                        md.append(f"  - log: `{Path(r.log).relative_to(out)}`")
    md += ["", f"Full outputs: `{out}/logs/`.", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(md))
    return path


# ---------------------------------------------------------------------------------------------
# the command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument(
        "--dry-run", action="store_true", help="a tiny subset of every stage (~1 min)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument(
        "--stages",
        nargs="+",
        default=list(STAGES),
        choices=STAGES,
        help="the stages to run (default all)",
    )
    parser.add_argument("--recipes", nargs="+", help="just these recipes (default all)")
    parser.add_argument("--slow", action="store_true", help="include the tests marked slow")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="pytest-xdist workers for the suite (default: half the cores, at most 8; 0: none)",
    )
    parser.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every timeout and budget"
    )
    args = parser.parse_args(argv)
    if args.device == "cpu" and not args.dry_run:
        parser.error("--device cpu runs only with --dry-run: the full check is for a GPU")
    if args.timeout_scale <= 0:
        parser.error(f"--timeout-scale must be > 0, got {args.timeout_scale}")
    unknown = sorted(set(args.recipes or ()) - set(recipe_names()))
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; available: {recipe_names()}")
    if args.workers is None:
        try:
            import xdist  # noqa: F401
        except ImportError:
            args.workers = 0
        else:
            args.workers = 0 if args.dry_run else min(8, max(1, (os.cpu_count() or 2) // 2))
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and (reason := no_cuda_reason()) is not None:
        print(
            f"no CUDA device: {reason}. `make gpu-check` needs a machine with a GPU; "
            "`python tools/gpu_check.py --device cpu --dry-run` checks its pipeline on the CPU.",
            file=sys.stderr,
        )
        return 2
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for owned in ("logs", "junit", "recipes", "bench", "REPORT.md", "report.json"):
        path = out / owned
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    machine = machine_info(args.device)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg",
        "EBM_CACHE": os.environ.get("EBM_CACHE") or str(out / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    if args.dry_run:
        env.setdefault("OMP_NUM_THREADS", "1")
    mode = "DRY RUN" if args.dry_run else "full check"
    print(f"[gpu-check] {mode} on {args.device}: stages {', '.join(args.stages)}; out {out}")
    results = run_stages(plan(args, machine), out, env)
    report = write_report(out, machine, results, args.dry_run)
    failed = [r for r in results if r.status in FAILED]
    print(f"[gpu-check] report: {report}")
    for r in failed:
        print(f"[gpu-check] {r.stage} / {r.name}: {r.status}: {r.detail}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
