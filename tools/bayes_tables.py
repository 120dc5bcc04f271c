"""The uncertainty tables of docs/guide/bayes.md, written from the full runs' JSONs.

Every number in a table between ``<!-- table: NAME -->`` and ``<!-- /table -->`` in the guide
comes from ``figures/<recipe>.json``, rounded for display and nothing else. Run it after
``make gallery`` (or a recipe's full run):

    python tools/bayes_tables.py           # rewrite the tables in docs/guide/bayes.md
    python tools/bayes_tables.py --check   # exit 1 if a table differs from what the JSONs give
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide" / "bayes.md"
FIGURES = ROOT / "figures"

REGRESSION = {
    "mc_dropout_tanh": "MC dropout, tanh",
    "mc_dropout_relu": "MC dropout, ReLU",
    "gp": "GP (RBF, type-II ML)",
    "svi_bnn": "variational BNN",
    "deep_ensemble": "deep ensemble (M = 5)",
    "laplace_tanh": "last-layer Laplace, tanh net",
    "laplace_relu": "last-layer Laplace, ReLU net",
    "swag_tanh": "SWAG, tanh net",
    "swag_relu": "SWAG, ReLU net",
}
CO2 = {
    "mc_dropout_relu": "MC dropout, ReLU",
    "gp": "GP, SE kernel",
    "mc_dropout_tanh": "MC dropout, tanh",
    "laplace_relu": "last-layer Laplace, ReLU net",
    "laplace_tanh": "last-layer Laplace, tanh net",
    "swag_relu": "SWAG, ReLU net",
    "swag_tanh": "SWAG, tanh net",
}
CLASSIFIERS = {
    "eval": "eval-mode net (softmax)",
    "mc_dropout": "MC dropout (100 passes)",
    "temperature": "temperature scaling",
    "vector": "vector scaling",
    "laplace": "last-layer Laplace (probit)",
    "swag": "SWAG (30 samples)",
}


def fixed(value: float, digits: int) -> str:
    """value with ``digits`` decimals; "-0.00" written "0.00"."""
    text = f"{value:.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text


def significant(value: float, digits: int = 3) -> str:
    """value with ``digits`` significant digits, never in exponent notation."""
    if value == 0:
        return "0"
    decimals = max(digits - 1 - int(f"{abs(value):e}".split("e")[1]), 0)
    return fixed(value, decimals)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def load(name: str) -> dict:
    return json.loads((FIGURES / f"{name}.json").read_text())


def regression_scores() -> str:
    r = load("mc_dropout_regression")
    rows = [
        [
            label,
            fixed(r[f"{m}_crps_in_range"], 3),
            fixed(r[f"{m}_nll_in_range"], 2),
            fixed(r[f"{m}_std_far_over_in_range"], 1),
        ]
        for m, label in REGRESSION.items()
    ]
    return table(["method", "CRPS in range", "NLL in range", "std far / in"], rows)


def regression_intervals() -> str:
    r = load("mc_dropout_regression")
    rows = []
    for m, label in REGRESSION.items():
        row = [label]
        for kind in ("gaussian90", "conformal_absolute", "conformal_normalized"):
            row += [fixed(r[f"{m}_{kind}_coverage"], 3), significant(r[f"{m}_{kind}_width"])]
        rows.append(row)
    header = ["method", "Gaussian ±1.645σ", "width", "conformal, absolute", "width"]
    return table([*header, "conformal, normalised", "width"], rows)


def co2_scores() -> str:
    r = load("mc_dropout_co2")
    rows = [
        [
            label,
            fixed(r[f"{m}_crps_extrapolation"], 3),
            fixed(r[f"{m}_nll_extrapolation"], 2),
            fixed(r[f"{m}_coverage95_extrapolation"], 2),
            fixed(r[f"{m}_std_extrapolation_mean"], 3),
            fixed(r[f"{m}_std_at_far_point"], 3),
        ]
        for m, label in CO2.items()
    ]
    header = ["method", "CRPS", "NLL", "95 % coverage", "mean std", "std at 2025"]
    return table(header, rows)


def co2_intervals() -> str:
    r = load("mc_dropout_co2")
    rows = []
    for m, label in CO2.items():
        row = [label]
        for where in ("in_range", "extrapolation"):
            row += [
                fixed(r[f"{m}_gaussian90_coverage_{where}"], 2),
                fixed(r[f"{m}_conformal_absolute_coverage_{where}"], 2),
                fixed(r[f"{m}_conformal_normalized_coverage_{where}"], 2),
                fixed(r[f"{m}_conformal_normalized_width_{where}"], 3),
            ]
        rows.append(row)
    header = ["method", "before 1990: Gaussian", "abs.", "norm.", "norm. width"]
    return table([*header, "1990–2001: Gaussian", "abs.", "norm.", "norm. width"], rows)


def classification_scores(name: str) -> str:
    r = load(name)
    metrics = ("accuracy", "nll", "ece", "adaptive_ece", "brier", "aurc", "ood_auroc", "fpr_at_95")
    rows = [
        [label, *(fixed(r[f"{m}_{metric}"], 3 if metric != "aurc" else 4) for metric in metrics)]
        for m, label in CLASSIFIERS.items()
        if f"{m}_accuracy" in r
    ]
    header = ["method", "accuracy", "NLL", "ECE", "adaptive ECE", "Brier", "AURC"]
    return table([*header, "OOD AUROC", "FPR@95"], rows)


def classification_sets(name: str) -> str:
    r = load(name)
    rows = [
        [
            f"{CLASSIFIERS[m].split(' (')[0]}, {method.upper()}",
            fixed(r[f"{m}_{method}_coverage"], 3),
            fixed(r[f"{m}_{method}_mean_size"], 2),
            fixed(r[f"{m}_{method}_empty_fraction"], 3),
        ]
        for m in ("eval", "mc_dropout")
        for method in ("aps", "raps")
    ]
    return table(["probabilities, sets", "coverage", "mean set size", "empty sets"], rows)


TABLES = {
    "regression_scores": regression_scores,
    "regression_intervals": regression_intervals,
    "co2_scores": co2_scores,
    "co2_intervals": co2_intervals,
    "classification_scores": lambda: classification_scores("mc_dropout_classification"),
    "classification_sets": lambda: classification_sets("mc_dropout_classification"),
    "mnist_scores": lambda: classification_scores("mc_dropout_classification_mnist"),
    "mnist_sets": lambda: classification_sets("mc_dropout_classification_mnist"),
}
BLOCK = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- /table -->)", re.S)


def render(text: str) -> str:
    """text with every ``<!-- table: NAME -->`` block rewritten from the JSONs."""

    def block(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r} in {GUIDE}; known: {sorted(TABLES)}")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if outdated")
    args = parser.parse_args(argv)
    text = GUIDE.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{GUIDE} is out of date: run python tools/bayes_tables.py", file=sys.stderr)
            return 1
        return 0
    GUIDE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
