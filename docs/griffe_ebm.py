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
text indented by 4 spaces below it, one entry per name; the types and defaults come from the
signature), and ends the block before the first line that is not an item by opening a "Notes"
section for it. Docstrings already in numpydoc form (``name : type``) are left as they are.
Doctest examples (``>>>`` lines, their ``...`` continuations and expected output, up to the next
blank line) are fenced as ``pycon`` code: Markdown would read ``>>>`` as nested quotes; for the
same reason a wrapped line that starts with ``>`` (``>= 1``) gets its ``>`` escaped.
Undocumented instance attributes (``self.tol = tol``) are left out of the reference.
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
    """Rewrite ``name: text`` item sections of a (dedented) docstring into numpydoc's form,
    and fence its doctest examples (``_fence_doctests``)."""
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
        items: list[tuple[list[str], list[str]]] = []  # (names, description lines)
        while i < len(lines) and not _is_header(lines, i):
            line = lines[i]
            match = _ITEM.match(line)
            if not line.strip():
                if items:
                    items[-1][1].append("")
            elif line.startswith(" ") and items:
                items[-1][1].append(line.strip())  # a continuation line
            elif match:
                items.append((match.group(1).split(", "), [match.group(2)]))
            else:
                break  # prose after the items: its own section below
            i += 1
        for names, text in items:
            while text and not text[-1]:
                text.pop()
            # one entry per name: numpydoc's "a, b" would show a's default for b as well
            for name in names:
                out.append(name)
                out += ["    " + t if t else "" for t in text]
        if i < len(lines) and not _is_header(lines, i):
            out += ["", "Notes", "-----"]
        elif i < len(lines):
            out.append("")
    return _fence_doctests("\n".join(out))


def _fence_doctests(text: str) -> str:
    """Fence each doctest block (from a ``>>>`` line to the next blank line) as ``pycon``."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not (stripped == ">>>" or stripped.startswith(">>> ")):
            if stripped.startswith(">"):  # ">= 1" wrapped to the line's start: not a quote
                lines[i] = lines[i][: len(lines[i]) - len(stripped)] + "\\" + stripped
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(stripped)]
        if out and out[-1].strip():
            out.append("")  # a fence must not continue a paragraph
        out.append(indent + "```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(indent + "```")
    return "\n".join(out)


class EbmDocstrings(Extension):
    """Normalise every docstring griffe loads (see the module docstring)."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise(obj.docstring.value)

    def on_class_members(self, *, cls, **kwargs) -> None:
        """Drop undocumented instance attributes (``self.tol = tol``): the parameters say it all."""
        for name, member in list(cls.members.items()):
            if (
                not member.is_alias
                and member.is_attribute
                and member.docstring is None
                and "instance-attribute" in member.labels
            ):
                del cls.members[name]
