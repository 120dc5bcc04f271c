"""Run the benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks losses kmeans``.

Each ``benchmarks/bench_<name>.py`` defines ``run() -> list[dict]``; every row names the
comparison, our time, the peer's, the ratio and the target. Rows are printed as a Markdown table
and saved to ``benchmarks/results/<name>.json`` (the committed results), or to ``<DIR>/<name>.json``
with ``--out DIR``. A peer that is not installed is reported, not faked.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from benchmarks.timing import machine

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {names()})")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON")
    args = parser.parse_args(argv)
    chosen = args.names or names()
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {names()}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}\n")
    print("| benchmark | ours | peer | ratio (ours/peer) | target |")
    print("|---|---|---|---|---|")
    for name in chosen:
        rows = importlib.import_module(f"benchmarks.bench_{name}").run()
        for row in rows:
            print(
                f"| {row['name']} | {row.get('ours', '')} | {row.get('peer', '')} | "
                f"{row.get('ratio', float('nan')):.2f} | {row.get('target', '')} |",
                flush=True,
            )
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / f"{name}.json"
        out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
