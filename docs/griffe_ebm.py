"""A griffe extension (mkdocs.yml, mkdocstrings ``extensions``) for ebm's docstring style.

ebm's docstrings list parameters as ``name: text`` lines under a dashed ``Parameters`` heading,
continuation lines indented, often followed by prose at the base indentation::

    Parameters
    ----------
    n_components: K >= 1.
    n_init, max_iter: EM runs and iterations per run (>= 1).
    seed: seeds a private generator.
    Every parameter is validated by ``fit``.

The numpy parser reads ``name: text`` as a name and a *type*, and swallows the prose into the
list. This extension rewrites such a block into numpydoc's form (``name`` on its own line, the
text indented by 4 spaces below it; the types come from the signature), and ends the block
before the first line that is not an item by opening a "Notes" section for it. Docstrings
already in numpydoc form (``name : type``) are left as they are.
"""

from __future__ import annotations

import re

try:
    from griffe import Extension
except ImportError:  # the docs extra is not installed: normalise() still works (and is tested)
    Extension = object

_ITEM_SECTIONS = {"parameters", "other parameters", "attributes", "fitted attributes"}
_ITEM = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:, \*{0,2}[A-Za-z_]\w*)*): (\S.*)$")


def _is_dash(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) == {"-"}


def _is_header(lines: list[str], i: int) -> bool:
    return (
        i + 1 < len(lines)
        and bool(lines[i].strip())
        and not lines[i].startswith(" ")
        and _is_dash(lines[i + 1])
    )


def normalise(text: str) -> str:
    """Rewrite ``name: text`` item sections of a (dedented) docstring into numpydoc's form."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not (_is_header(lines, i) and lines[i].strip().lower() in _ITEM_SECTIONS):
            out.append(lines[i])
            i += 1
            continue
        title = lines[i].strip()
        i += 2
        first = next((line for line in lines[i:] if line.strip()), "")
        if not _ITEM.match(first):
            if title.lower() == "fitted attributes":
                # prose, not a list: a titled block of text (numpy: an admonition) for the
                # first paragraph; what follows it gets a "Notes" heading of its own
                out += [title, "-" * len(title)]
                while i < len(lines) and not lines[i].strip():
                    i += 1
                while i < len(lines) and lines[i].strip():
                    out.append(lines[i])
                    i += 1
                rest = next((j for j in range(i, len(lines)) if lines[j].strip()), None)
                if rest is not None and not _is_header(lines, rest):
                    out += ["", "Notes", "-----"]
            else:  # numpydoc already (or something else): left as it is
                out += [lines[i - 2], lines[i - 1]]
            continue
        out += ["Attributes" if title.lower() == "fitted attributes" else title, "-" * len(title)]
        while i < len(lines) and not _is_header(lines, i):
            line = lines[i]
            match = _ITEM.match(line)
            if not line.strip():
                out.append("")
            elif line.startswith(" "):
                out.append("    " + line.strip())  # a continuation line
            elif match:
                out += [match.group(1), "    " + match.group(2)]
            else:
                # prose after the items: its own section, so it is not read as an item
                while out and not out[-1].strip():
                    out.pop()
                out += ["", "Notes", "-----"]
                break
            i += 1
    return "\n".join(out)


class EbmDocstrings(Extension):
    """Normalise every docstring griffe loads (see the module docstring)."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise(obj.docstring.value)
