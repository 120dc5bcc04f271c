"""Run every recipe in this folder, in quick mode with --quick: ``python recipes/run_all.py --quick``.

Outputs go to build/figures unless --out says otherwise (``make gallery`` passes ``--out figures``).

A recipe is any ``recipes/<name>.py`` not starting with an underscore (this runner excepted).
Each runs in its own process, so one failure is reported without hiding the others.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ebm.recipe import DEFAULT_OUT, print_table

HERE = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    return sorted(
        p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"default {DEFAULT_OUT}")
    parser.add_argument("--only", nargs="*", help="run just these recipes")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    failed, summary = [], {}
    for name in args.only or recipe_names():
        cmd = [sys.executable, str(HERE / f"{name}.py"), "--device", args.device, "--out", args.out]
        cmd += ["--quick"] if args.quick else []
        print(f"\n[run_all] {name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        status = "ok" if code == 0 else f"FAILED ({code})"
        summary[name] = {"status": status, "seconds": round(time.perf_counter() - start, 1)}
        if code:
            failed.append(name)
    if summary:
        print()
        print_table(f"run_all: outputs in {args.out}", summary, header="recipe")
    if failed:
        print(f"[run_all] failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
