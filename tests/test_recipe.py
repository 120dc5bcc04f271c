"""ebm/recipe.py: the command line and outputs every recipe shares."""

import ast
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ebm.recipe import (
    format_number,
    parse_args,
    print_table,
    save_figure,
    save_samples,
    write_results,
)
from recipes.run_all import parse_args as run_all_args
from recipes.run_all import recipe_names

ROOT = Path(__file__).resolve().parents[1]


def test_parse_args_defaults_and_extras():
    args = parse_args("demo", [])
    # a recipe run never rewrites the committed gallery unless asked to
    assert (args.quick, args.device, args.seed, args.out) == (
        False,
        "auto",
        0,
        Path("build/figures"),
    )
    assert parse_args("demo", ["--out", "figures"]).out == Path("figures")
    args = parse_args(
        "demo",
        ["--quick", "--epochs", "3"],
        add_arguments=lambda p: p.add_argument("--epochs", type=int, default=1),
    )
    assert args.quick and args.epochs == 3


def test_help_shows_the_summary_then_the_options_then_the_docstring_as_written(capsys):
    doc = """A demo recipe, first paragraph.

    Method:
    - first item, whose text goes on
      on a second line;
    - second item.

        python recipes/demo.py --quick
    """
    with pytest.raises(SystemExit) as exit_:
        parse_args(doc, ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    summary, options, epilog = (
        text.index("A demo recipe"),
        text.index("\n  --seed SEED"),
        text.index("Method:"),
    )
    assert summary < options < epilog
    # the docstring's lines keep their breaks and indentation (dedented as a whole)
    assert "Method:\n- first item, whose text goes on\n  on a second line;\n- second item." in text
    assert "\n    python recipes/demo.py --quick" in text
    # every common flag says what it does
    for flag, help_text in [
        ("--quick", "small and fast"),
        ("--device", "where to train"),
        ("--precision", "precision of the Trainer fits"),
        ("--seed", "seed of the run's randomness"),
        ("--out", "output folder"),
    ]:
        assert help_text in " ".join(text[text.index("\n  " + flag) :].split()[:12]), flag


def test_precision_flag_reaches_every_trainer_of_every_recipe(capsys):
    assert parse_args("demo", []).precision == "32"
    assert parse_args("demo", ["--precision", "16-mixed"]).precision == "16-mixed"
    with pytest.raises(SystemExit):
        parse_args("demo", ["--precision", "fp8"])
    assert "--precision" in capsys.readouterr().err
    # every Trainer(...) a recipe builds takes precision=args.precision (make gpu-check runs
    # each recipe in bf16 and 16-mixed, which would otherwise silently run in fp32)
    for name in recipe_names():
        tree = ast.parse((ROOT / "recipes" / f"{name}.py").read_text())
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Trainer":
                given = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert given.get("precision") == "args.precision", (name, call.lineno)


def test_write_results_makes_everything_json(tmp_path):
    results = {"t": torch.tensor([1.5, 2.0]), "np": np.float32(0.25), "inf": math.inf, 3: (1, 2)}
    path = write_results(tmp_path / "sub", "demo", results)
    assert json.loads(path.read_text()) == {"t": [1.5, 2.0], "np": 0.25, "inf": "inf", "3": [1, 2]}
    assert not list(path.parent.glob("*.tmp"))


def test_save_figure_writes_png_and_closes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path, "demo")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_run_all_finds_recipes_but_not_itself():
    names = recipe_names()
    assert "run_all" not in names and all(not n.startswith("_") for n in names)


def test_run_all_writes_to_build_unless_told_and_only_make_gallery_writes_figures():
    assert Path(run_all_args([]).out) == Path("build/figures")
    assert run_all_args(["--out", "figures", "--quick"]).out == "figures"
    # in the Makefile, the one recipe command that names figures/ as its output is `gallery`
    makefile = (ROOT / "Makefile").read_text().split("\n\n")
    writes_gallery = [block for block in makefile if "--out figures" in block]
    assert len(writes_gallery) == 1 and writes_gallery[0].lstrip().startswith("gallery:")
    runs = [block for block in makefile if "run_all.py" in block]
    assert all("--out" in block for block in runs)


def test_save_samples_round_trips_named_arrays_atomically(tmp_path):
    arrays = {
        "ring-8/hinge": torch.arange(6.0, requires_grad=True).view(3, 2) * 1,
        "coin": np.array([0.0, 1.0, 1.0]),
        "labels": [1, 2],
    }
    path = save_samples(tmp_path / "sub", "demo", arrays)
    assert path == tmp_path / "sub" / "demo_samples.npz"
    with np.load(path) as saved:
        assert sorted(saved.files) == sorted(arrays)
        np.testing.assert_array_equal(saved["ring-8/hinge"], np.arange(6.0).reshape(3, 2))
        np.testing.assert_array_equal(saved["coin"], [0.0, 1.0, 1.0])
        np.testing.assert_array_equal(saved["labels"], [1, 2])
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "value, text",
    [
        (0.123456, "0.1235"),
        (24.4321, "24.43"),
        (3314.2712, "3314"),
        (123456.7, "123457"),
        (2.5e-7, "2.5e-07"),
        (-0.43125, "-0.4313"),
        (0.0, "0"),
        (7, "7"),
        (np.int64(25), "25"),
        (np.float32(0.5), "0.5"),
        (True, "yes"),
        (float("nan"), "nan"),
        (-math.inf, "-inf"),
        (None, "-"),
        ("8/8", "8/8"),
        (torch.tensor(0.25), "0.25"),
        (torch.tensor([[1.0]]), "1"),
        (torch.tensor([1.0, 0.5]), "[1, 0.5]"),
        (torch.zeros(3, 4), "<array (3, 4)>"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_format_number_refuses_what_it_cannot_show():
    with pytest.raises(TypeError, match="dict"):
        format_number({"a": 1})


def test_print_table_aligns_rows_and_columns(capsys):
    text = print_table(
        "demo",
        {"gp": {"CRPS": 0.43712, "NLL": 1.18}, "mc_dropout_relu": {"CRPS": torch.tensor(0.581)}},
        header="method",
    )
    assert capsys.readouterr().out == text + "\n"
    assert text.splitlines() == [
        "demo",
        "method             CRPS   NLL",
        "---------------  ------  ----",
        "gp               0.4371  1.18",
        "mc_dropout_relu   0.581",
    ]


def test_print_table_of_scalars_never_prints_reprs(capsys):
    text = print_table("cnf_2d", {"test log-likelihood": torch.tensor(-0.43125), "steps": 1500})
    assert text.splitlines() == [
        "cnf_2d",
        "-------------------  -------",
        "test log-likelihood  -0.4313",
        "steps                   1500",
    ]
    assert "tensor(" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "rows, match",
    [({}, "non-empty"), ({"a": 1, "b": {"c": 2}}, "not a mix"), ([1, 2], "mapping")],
)
def test_print_table_refuses_bad_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        print_table("demo", rows)


def test_every_recipe_prints_its_key_numbers_as_a_table():
    """A recipe ends with print_table of the numbers it wrote with write_results (issue 16)."""
    import ast

    for name in recipe_names():
        tree = ast.parse((ROOT / "recipes" / f"{name}.py").read_text())
        called = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert "write_results" in called, name
        assert "print_table" in called, f"{name} writes its numbers but prints no table"
