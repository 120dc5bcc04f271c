"""The documentation site's structure, without building it (`make docs` builds it; CI runs it).

Every recipe has a gallery page and every file in figures/ belongs to one; every public
namespace has an API page in the navigation; every page under docs/ is in the navigation; the
gallery's numbers are the JSONs' numbers; ebm's docstring style is rewritten into numpydoc's.
"""

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

import ebm

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("hooks")
griffe_ebm = _load("griffe_ebm")


def _nav_targets() -> set[str]:
    """Every page the navigation of mkdocs.yml names (read as text: no YAML dependency)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    return set(re.findall(r":\s+([\w/.-]+\.md)", nav))


def test_every_recipe_has_a_gallery_page_and_every_figure_a_recipe():
    outputs = hooks.recipe_outputs()  # raises for a file in figures/ that no recipe claims
    recipes = sorted(p.stem for p in (ROOT / "recipes").glob("*.py") if not p.stem.startswith("_"))
    recipes.remove("run_all")
    assert sorted(outputs) == recipes
    claimed = [name for files in outputs.values() for names in files.values() for name in names]
    on_disk = [p.name for p in (ROOT / "figures").iterdir() if p.suffix in (".png", ".json")]
    assert sorted(claimed) == sorted(on_disk)
    for name, files in outputs.items():
        assert files["png"], f"recipe {name} has no committed figure"
        assert files["json"], f"recipe {name} has no committed JSON"


def test_owner_takes_the_longest_prefix_and_the_mnist_aliases():
    recipes = ["gan_digits", "gan_toy", "mc_dropout_classification", "vae_digits"]
    assert hooks.owner("gan_toy_seed1_ring-8", recipes) == "gan_toy"
    assert hooks.owner("mc_dropout_classification_mnist", recipes) == "mc_dropout_classification"
    assert hooks.owner("vae_mnist_latent", recipes) == "vae_digits"
    assert hooks.owner("gan_mnist", recipes) == "gan_digits"
    assert hooks.owner("gan_toyish", recipes) is None  # a prefix must end at an underscore


def test_gallery_numbers_are_the_json_numbers():
    outputs = hooks.recipe_outputs()
    for name, files in outputs.items():
        page = hooks.gallery_page(name, files)
        for js in files["json"]:
            assert f"](../figures/{js})" in page
            table = page.split(f"### `{js}`", 1)[1].split("\n### ", 1)[0]
            rows = dict(re.findall(r"^\| `(.+?)` \| (.*) \|$", table, re.M))
            leaves = hooks.flatten(json.loads((ROOT / "figures" / js).read_text()))
            assert len(rows) == len(leaves), js
            for key, value in leaves:
                shown = rows[key.replace("|", "\\|")]
                if isinstance(value, float) and math.isfinite(value):
                    assert math.isclose(float(shown), value, rel_tol=1e-5, abs_tol=1e-300), key
                elif isinstance(value, int) and not isinstance(value, bool):
                    assert shown == str(value), key
        for png in files["png"]:
            assert f"](../figures/{png})" in page


def test_format_value():
    assert hooks.format_value(0.9906666874885559) == "0.990667"
    assert hooks.format_value(12345) == "12345"
    assert hooks.format_value(True) == "`true`"
    assert hooks.format_value(None) == "`null`"
    assert hooks.format_value([1.0, 2.5e-05]) == "[1, 2.5e-05]"
    assert hooks.format_value(float("nan")) == "nan"


def test_every_public_namespace_has_an_api_page_in_the_nav():
    assert hooks.NAMESPACES == ("ebm", *(f"ebm.{name}" for name in ebm._SUBMODULES))
    nav = _nav_targets()
    for namespace in hooks.NAMESPACES:
        page = "api/" + hooks._page_of(namespace)
        assert page in nav, page
        assert f"<!-- api: {namespace} -->" in (DOCS / page).read_text(encoding="utf-8")


def test_every_page_is_in_the_nav():
    nav = _nav_targets()
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages <= nav, sorted(pages - nav)
    assert {p for p in nav if not p.startswith("gallery/")} <= pages | {"gallery/index.md"}


@pytest.mark.parametrize("namespace", ["ebm.losses", "ebm.models", "ebm.train"])
def test_api_entries_cover_the_public_names(namespace):
    entries = hooks.api_entries()[namespace]
    module = importlib.import_module(namespace)
    assert [name for name, _, _ in entries] == list(module.__all__)
    for name, path, _ in entries:
        obj = getattr(module, name)
        target = importlib.import_module(path.rsplit(".", 1)[0]) if "." in path else None
        if not isinstance(obj, type(ebm)):
            assert getattr(target, path.rsplit(".", 1)[1]) is obj, path


GMM_LIKE = """Summary line.

Parameters
----------
n_components: K >= 1.
covariance_type: "full" or
    "diag".
n_init, max_iter: runs and iterations.
Every parameter is validated by ``fit``.

Fitted attributes
-----------------
weights_ (K,), means_ (K, D).

More prose."""


def test_griffe_extension_rewrites_the_parameter_style():
    assert griffe_ebm.normalise(GMM_LIKE) == (
        "Summary line.\n\n"
        "Parameters\n----------\n"
        "n_components\n    K >= 1.\n"
        'covariance_type\n    "full" or\n    "diag".\n'
        "n_init\n    runs and iterations.\n"
        "max_iter\n    runs and iterations.\n\n"
        "Notes\n-----\n"
        "Every parameter is validated by ``fit``.\n\n"
        "Fitted attributes\n-----------------\n"
        "weights_ (K,), means_ (K, D).\n\n"
        "Notes\n-----\n\n"
        "More prose."
    )


def test_griffe_extension_leaves_numpydoc_and_plain_text_alone():
    numpydoc = "Summary.\n\nParameters\n----------\nx : int\n    The x.\n"
    assert griffe_ebm.normalise(numpydoc) == numpydoc
    plain = "Summary.\n\nname: not a section, just text.\n"
    assert griffe_ebm.normalise(plain) == plain


def test_griffe_extension_fences_doctests_as_code():
    text = "Summary.\n\nSome prose:\n>>> x = 1\n>>> for i in range(2):\n...     x += i\n>>> x\n2\n\nMore."
    assert griffe_ebm.normalise(text) == (
        "Summary.\n\nSome prose:\n\n```pycon\n>>> x = 1\n>>> for i in range(2):\n"
        "...     x += i\n>>> x\n2\n```\n\nMore."
    )
    # a comparison wrapped to the start of a line is text, not a Markdown quote
    assert griffe_ebm.normalise("n: an int\n>= 1.") == "n: an int\n\\>= 1."


def test_readme_links_resolve():
    """README.md links into docs/: every relative link names a file that exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.S))
    relative = [t for t in targets if not re.match(r"^(https?://|mailto:|#)", t)]
    assert relative, "the README should link into the docs"
    for target in relative:
        assert (ROOT / target.split("#", 1)[0]).is_file(), target


def test_recipe_docstring_lists_become_markdown_lists():
    text = "Method:\n- a: x\n  continued\n- b\nProse again.\n\nNext paragraph."
    html_like = hooks.docstring_markdown(text).split("\n")
    assert html_like == [
        "Method:",
        "",
        "- a: x",
        "  continued",
        "- b",
        "",
        "Prose again.",
        "",
        "Next paragraph.",
    ]
    assert hooks.docstring_markdown("no list\nat all") == "no list\nat all"


def test_names_public_only_in_a_submodule_get_a_section_on_their_namespace_page():
    extras = hooks.api_extras(hooks.api_entries())
    assert ("ebm.models.vae", "ebm.models.vae.mlp_encoder") in extras["ebm.models"]
    assert ("ebm.data.toy2d", "ebm.data.toy2d.ring_centers") in extras["ebm.data"]
    assert not extras["ebm.train"]  # the Trainer's plumbing stays out of the reference
    documented = {path for entries in hooks.api_entries().values() for _, path, _ in entries}
    assert documented.isdisjoint(path for items in extras.values() for _, path in items)
