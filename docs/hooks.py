"""MkDocs hooks for the ebm site (mkdocs.yml: ``hooks: [docs/hooks.py]``).

- ``figures/`` is staged from the repository root at build time: its PNGs and JSONs are served
  as ``figures/<name>`` without a second copy in git.
- The gallery: one generated page per recipe (``recipes/<name>.py``) with its docstring, its
  figures and its numbers, rendered from ``figures/*.json`` at every build, so the pages always
  show what the JSONs hold. Every file in ``figures/`` must belong to a recipe.
- The API reference: a line ``<!-- api: ebm.models -->`` in a page expands to one mkdocstrings
  block per public name of that namespace (its ``__all__``, or, without one, the classes and
  functions it defines), pointing at the module that defines the name, so lazily loaded
  namespaces are documented too.
- After the build, every local link and image in the generated HTML (``href``/``src``, with
  its ``#anchor``) must resolve: a broken one fails the build.

The page generation is plain functions (``recipe_outputs``, ``gallery_page``, ``api_markdown``),
tested without MkDocs in tests/test_docs_site.py.
"""

from __future__ import annotations

import ast
import html.parser
import importlib
import inspect
import json
import math
import pkgutil
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
RECIPES = ROOT / "recipes"

# namespaces with an API page, in the navigation's order (the first page that lists a name owns it)
NAMESPACES = (
    "ebm",
    "ebm.energies",
    "ebm.losses",
    "ebm.inference",
    "ebm.latent",
    "ebm.sampling",
    "ebm.score_matching",
    "ebm.models",
    "ebm.bayes",
    "ebm.metrics",
    "ebm.data",
    "ebm.train",
    "ebm.plot",
    "ebm.recipe",
)

# outputs whose name does not start with their recipe's: runs of a recipe on MNIST (--data-dir)
OUTPUT_ALIASES = {"vae_mnist": "vae_digits", "gan_mnist": "gan_digits"}
FIGURE_SUFFIXES = (".png", ".json")


# ---- the gallery --------------------------------------------------------------------------------


def recipe_names() -> list[str]:
    """Every recipe: ``recipes/<name>.py`` not starting with an underscore, the runner excepted."""
    return sorted(
        p.stem for p in RECIPES.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"
    )


def owner(stem: str, recipes: list[str]) -> str | None:
    """The recipe that wrote ``figures/<stem>.*``: the longest recipe (or alias) prefixing it."""
    candidates = {r: r for r in recipes} | OUTPUT_ALIASES
    best = None
    for prefix, recipe in candidates.items():
        if (stem == prefix or stem.startswith(prefix + "_")) and recipe in recipes:
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, recipe)
    return best[1] if best else None


def recipe_outputs() -> dict[str, dict[str, list[str]]]:
    """``{recipe: {"png": [...], "json": [...]}}``, file names, the recipe's main run first.

    Raises ValueError for a PNG or JSON in figures/ that no recipe claims.
    """
    recipes = recipe_names()
    out = {r: {"png": [], "json": []} for r in recipes}
    orphans = []
    for path in sorted(FIGURES.iterdir()):
        if path.suffix not in FIGURE_SUFFIXES:
            continue
        recipe = owner(path.stem, recipes)
        if recipe is None:
            orphans.append(path.name)
        else:
            out[recipe][path.suffix[1:]].append(path.name)
    if orphans:
        raise ValueError(f"figures/ files that no recipe claims: {orphans}")
    for recipe, files in out.items():
        for names in files.values():
            names.sort(key=lambda name, r=recipe: (Path(name).stem != r, name))
    return out


def recipe_docstring(name: str) -> str:
    """The recipe's module docstring, read without importing it, as Markdown."""
    tree = ast.parse((RECIPES / f"{name}.py").read_text(encoding="utf-8"))
    return docstring_markdown(inspect.cleandoc(ast.get_docstring(tree) or ""))


def docstring_markdown(text: str) -> str:
    """Docstring text as Markdown: a blank line before a "- " list and after it.

    Docstrings start lists right under a sentence ("Method:\n- energy: ...") and resume prose
    on the next unindented line; Markdown would read the first as one paragraph and the second
    as the last item's continuation.
    """
    lines: list[str] = []
    in_list = False
    for line in text.splitlines():
        item = line.startswith("- ")
        if item and not in_list and lines and lines[-1].strip():
            lines.append("")
        elif in_list and line.strip() and not item and not line.startswith(" "):
            lines.append("")
        in_list = item or (in_list and line.startswith(" ") and bool(line.strip()))
        lines.append(line)
    return "\n".join(lines)


def format_value(value) -> str:
    """One JSON value as table text: numbers to 6 significant digits, lists element-wise."""
    if isinstance(value, bool) or value is None:
        return f"`{json.dumps(value)}`"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"unexpected JSON value {value!r}")


def flatten(data, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts as ``(dotted.key, leaf)`` rows; lists of dicts are indexed ``key[i]``."""
    rows: list[tuple[str, object]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and any(isinstance(v, dict | list) for v in data):
        for i, value in enumerate(data):
            rows += flatten(value, f"{prefix}[{i}]")
    else:
        rows.append((prefix, data))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def numbers_table(path: Path) -> str:
    rows = flatten(json.loads(path.read_text(encoding="utf-8")))
    lines = ["| quantity | value |", "|---|---|"]
    lines += [f"| `{_cell(key)}` | {_cell(format_value(value))} |" for key, value in rows]
    return "\n".join(lines)


def gallery_page(name: str, outputs: dict[str, list[str]]) -> str:
    """The markdown of ``gallery/<name>.md``."""
    parts = [
        f"# `{name}`",
        recipe_docstring(name),
        f"Run it: `python recipes/{name}.py --quick` (a smoke run into `build/figures/`), or "
        f"`python recipes/{name}.py --out figures` (the full run behind this page; "
        "`--help` lists its options).",
        "## Figures",
    ]
    for png in outputs["png"]:
        parts.append(f"### `{png}`\n\n![{Path(png).stem}](../figures/{png})")
    if not outputs["png"]:
        parts.append("This recipe writes no committed figure.")
    parts.append("## Numbers")
    parts.append(
        "Rendered from the JSON files in `figures/` at every build of these pages (numbers to "
        "6 significant digits; the link gives the file itself)."
    )
    for js in outputs["json"]:
        parts.append(f"### `{js}`\n\n[{js}](../figures/{js})\n\n{numbers_table(FIGURES / js)}")
    if not outputs["json"]:
        parts.append("This recipe writes no committed JSON.")
    return "\n\n".join(parts) + "\n"


def gallery_index(outputs: dict[str, dict[str, list[str]]]) -> str:
    """The thumbnail grid that replaces ``<!-- gallery-index -->`` in gallery/index.md."""
    cells = []
    for name, files in outputs.items():
        summary = recipe_docstring(name).split("\n\n")[0].replace("\n", " ")
        thumb = f"[![{name}](../figures/{files['png'][0]})]({name}.md)" if files["png"] else ""
        cells.append(
            f'<div class="ebm-gallery-card" markdown>\n{thumb}\n\n'
            f"[`{name}`]({name}.md): {summary}\n\n</div>"
        )
    return '<div class="ebm-gallery" markdown>\n\n' + "\n\n".join(cells) + "\n\n</div>"


# ---- the API reference --------------------------------------------------------------------------


def public_names(module) -> list[str]:
    """``__all__``, or the classes and functions the module itself defines, in source order."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    ]


def _canonical(module, name: str, obj) -> str:
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and "<" not in obj.__qualname__:
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{module.__name__}.{name}"


def api_entries() -> dict[str, list[tuple[str, str, str | None]]]:
    """``{namespace: [(name, canonical path, page that owns it or None)]}``.

    A name listed by two namespaces is documented on the first (NAMESPACES order) and linked
    from the others. Submodules link to their own page when they have one.
    """
    owners: dict[str, str] = {}
    result = {}
    for ns in NAMESPACES:
        module = importlib.import_module(ns)
        entries = []
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                path = obj.__name__
                entries.append((name, path, path if path in NAMESPACES else None))
                continue
            path = _canonical(module, name, obj)
            owners.setdefault(path, ns)
            entries.append((name, path, None if owners[path] == ns else owners[path]))
        result[ns] = entries
    return result


# plumbing of the Trainer: its namespace exports what users need; the rest is internal
_NO_EXTRAS = ("ebm", "ebm.train")


def api_extras(entries) -> dict[str, list[tuple[str, str]]]:
    """``{namespace: [(submodule, canonical path)]}``: names public in a submodule (its
    ``__all__``: ``ebm.models.vae.mlp_encoder``) that no namespace page documents yet."""
    documented = {path for items in entries.values() for _, path, _ in items}
    extras: dict[str, list[tuple[str, str]]] = {}
    for ns in NAMESPACES:
        module = importlib.import_module(ns)
        extras[ns] = []
        if ns in _NO_EXTRAS or not hasattr(module, "__path__"):
            continue
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{ns}."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            sub = importlib.import_module(info.name)
            for name in getattr(sub, "__all__", []):
                obj = getattr(sub, name)
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue  # constants are described where they are used
                path = _canonical(sub, name, obj)
                if path not in documented:
                    documented.add(path)
                    extras[ns].append((info.name, path))
    return extras


def _page_of(namespace: str) -> str:
    return "ebm.md" if namespace == "ebm" else f"{namespace.split('.', 1)[1]}.md"


def api_markdown(namespace: str, entries, extras=()) -> str:
    """The mkdocstrings blocks of one namespace's page; ``extras``: (submodule, path) pairs
    documented under "More in <submodule>" headings (``api_extras``)."""
    parts = [f"::: {namespace}\n    options:\n      members: false\n      show_root_heading: false"]
    links = []
    for name, path, elsewhere in entries:
        if elsewhere is None and path.count(".") >= 1 and _is_module_path(path):
            # a submodule without a page of its own: its docstring, members listed elsewhere
            parts.append(f"::: {path}\n    options:\n      members: false")
        elif elsewhere is not None:
            target = _page_of(elsewhere)
            anchor = "" if path in NAMESPACES else f"#{path}"
            links.append(
                f"- [`{namespace}.{name}`]({target}{anchor}): documented under `{elsewhere}`."
            )
        else:
            parts.append(f"::: {path}\n    options:\n      show_root_full_path: false")
    current = None
    for submodule, path in extras:
        if submodule != current:
            parts.append(f"## More in `{submodule}`\n\nImport these from `{submodule}`.")
            current = submodule
        parts.append(f"::: {path}\n    options:\n      show_root_full_path: false")
    if links:
        parts.append("## Also here\n\n" + "\n".join(links))
    return "\n\n".join(parts)


def _is_module_path(path: str) -> bool:
    try:
        return inspect.ismodule(importlib.import_module(path))
    except ImportError:
        return False


_API_MARKER = re.compile(r"^<!-- api: (ebm[\w.]*) -->$", re.M)
_GALLERY_MARKER = "<!-- gallery-index -->"


# ---- MkDocs events ------------------------------------------------------------------------------

_state: dict = {}


def on_config(config):
    from mkdocs.exceptions import PluginError

    try:
        _state["outputs"] = recipe_outputs()
    except ValueError as err:
        raise PluginError(str(err)) from err
    _state["api"] = None
    # one gallery page per recipe, under the nav's "Gallery" entry
    nav = config["nav"]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and "Gallery" in item:
            index = item["Gallery"]
            pages = [{name: f"gallery/{name}.md"} for name in _state["outputs"]]
            nav[i] = {"Gallery": [index, *pages]}
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for path in sorted(FIGURES.iterdir()):
        if path.suffix in FIGURE_SUFFIXES:
            files.append(
                File(
                    f"figures/{path.name}",
                    src_dir=str(ROOT),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    for name, outputs in _state["outputs"].items():
        files.append(
            File.generated(config, f"gallery/{name}.md", content=gallery_page(name, outputs))
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if _GALLERY_MARKER in markdown:
        markdown = markdown.replace(_GALLERY_MARKER, gallery_index(_state["outputs"]))
    if _API_MARKER.search(markdown):
        if _state["api"] is None:
            _state["api"] = api_entries()
            _state["api_extras"] = api_extras(_state["api"])
        markdown = _API_MARKER.sub(
            lambda m: api_markdown(
                m.group(1), _state["api"][m.group(1)], _state["api_extras"][m.group(1)]
            ),
            markdown,
        )
    return markdown


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)
            if key in ("href", "src") and value and tag in ("a", "img", "link", "script", "source"):
                self.refs.append(value)


def check_site(site_dir: Path) -> list[str]:
    """Every local href/src of every page resolves to a file, and its #anchor to an id there."""
    pages = {}
    for page in site_dir.rglob("*.html"):
        if page.name == "404.html":  # its links are absolute (no site_url): served at any depth
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page.relative_to(site_dir).as_posix()] = parser
    problems = []
    for rel, parser in sorted(pages.items()):
        for ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("mailto:", "data:", "javascript:")):
                continue
            target = rel
            if parts.path:
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(rel), unquote(parts.path))
                )
                if target.startswith(".."):
                    problems.append(f"{rel}: {ref} leaves the site")
                    continue
                if (site_dir / target).is_dir():
                    target = posixpath.join(target, "index.html")
                if not (site_dir / target).is_file():
                    problems.append(f"{rel}: {ref} does not exist")
                    continue
            anchor = unquote(parts.fragment)
            if anchor and target in pages and anchor not in pages[target].ids:
                problems.append(f"{rel}: {ref}: no id {anchor!r} in {target}")
    return problems


def on_post_build(config):
    from mkdocs.exceptions import PluginError

    problems = check_site(Path(config["site_dir"]))
    if problems:
        raise PluginError(
            f"{len(problems)} broken local link(s) in the site:\n  " + "\n  ".join(problems)
        )
