"""The distribution builds, carries the right metadata, and its long description renders.

The long description (README.pypi.md) is what the package index shows: it must render as
Markdown, with no relative link and no image (both break on the index page).
"""

import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import ebm

ROOT = Path(__file__).resolve().parents[1]
LONG_DESCRIPTION = ROOT / "README.pypi.md"
ABSOLUTE = re.compile(r"^(https?://|mailto:|#)")


def _markdown_targets(text: str) -> list[str]:
    """Targets of inline links/images and of reference definitions in Markdown."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    inline = re.findall(r"\]\(\s*<?([^)\s>]+)", text)
    references = re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text, re.M)
    return inline + references


def test_long_description_has_no_relative_link_and_no_image():
    text = LONG_DESCRIPTION.read_text(encoding="utf-8")
    assert "![" not in text and "<img" not in text.lower(), "images break on the index page"
    relative = [t for t in _markdown_targets(text) if not ABSOLUTE.match(t)]
    assert not relative, f"relative links break on the index page: {relative}"
    assert not re.search(r"<a\s[^>]*href=[\"'](?!https?://|#)", text, re.I)


def test_the_checks_catch_relative_links_and_images():
    """The link check above is not vacuous."""
    assert _markdown_targets("see [docs](docs/guide.md) and ![fig](figures/a.png)") == [
        "docs/guide.md",
        "figures/a.png",
    ]
    assert _markdown_targets("[ok](https://example.org/x)\n\n[ref]: ./local.md\n") == [
        "https://example.org/x",
        "./local.md",
    ]


def test_readme_stays_an_overview():
    assert (ROOT / "README.md").stat().st_size <= 15_000


def test_sdist_and_wheel_build_and_their_metadata_render(tmp_path):
    pytest.importorskip("build")
    renderer = pytest.importorskip("readme_renderer.markdown")
    # no isolation: the environment's setuptools builds it, nothing is downloaded
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    version = ebm.__version__
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert wheel.name == f"ebm_torch-{version}-py3-none-any.whl"
    assert sdist.name == f"ebm_torch-{version}.tar.gz"

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_text = zf.read(f"ebm_torch-{version}.dist-info/METADATA").decode()
    assert "ebm/__init__.py" in names
    assert f"ebm_torch-{version}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "recipes/", "docs/", "figures/")) for n in names)

    meta = Parser().parsestr(meta_text)
    assert meta["Name"] == "ebm-torch"
    assert meta["Version"] == version
    assert meta["License-Expression"] == "MIT"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "Programming Language :: Python :: 3" in meta.get_all("Classifier")
    extras = meta.get_all("Provides-Extra")
    assert {"test", "docs", "tensorboard"} <= set(extras)

    long_description = meta.get_payload()
    assert long_description.strip() == LONG_DESCRIPTION.read_text(encoding="utf-8").strip()
    # what `twine check` does for Markdown: readme_renderer must produce HTML
    rendered = renderer.render(long_description)
    assert rendered, "the long description does not render"
    assert "<img" not in rendered
    hrefs = re.findall(r'href="([^"]*)"', rendered)
    assert all(ABSOLUTE.match(h) for h in hrefs), hrefs

    with tarfile.open(sdist) as tf:
        members = tf.getnames()
    assert f"ebm_torch-{version}/LICENSE" in members
    assert f"ebm_torch-{version}/README.pypi.md" in members
