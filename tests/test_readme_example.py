"""The quick-start example runs as written and does what it says.

One example, three places: the README's quick start, the docs' Getting started ("First fit")
and the package index's long description (README.pypi.md). They must be the same text, and it
must run. The docs' first-energy snippet runs too.
"""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PLACES = ("README.md", "docs/getting-started.md", "README.pypi.md")


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _core_example(name: str) -> str:
    text = (ROOT / name).read_text(encoding="utf-8")
    if name == "README.pypi.md":  # no HTML comments there: its one python block is the example
        blocks = _python_blocks(text)
    else:
        section = re.search(r"<!-- section:core -->(.*?)<!-- /section:core -->", text, re.S)
        assert section, f"{name} has no core section"
        blocks = _python_blocks(section.group(1))
    assert len(blocks) == 1, f"expected one python example in {name}'s core, got {len(blocks)}"
    return blocks[0]


def test_the_quick_start_example_is_the_same_everywhere():
    examples = {name: _core_example(name) for name in PLACES}
    assert len(set(examples.values())) == 1, "the quick-start examples differ between " + ", ".join(
        PLACES
    )


def test_core_example_trains_a_class_energy(capsys):
    accuracies = []
    for _ in range(2):
        namespace: dict = {"__name__": "readme_example"}
        with torch.random.fork_rng():  # the example seeds torch's global RNG: keep it local
            torch.seed()  # any state before the run: the example seeds what it needs
            exec(compile(_core_example("README.md"), "README.md:core", "exec"), namespace)
        accuracies.append(namespace["accuracy"])
    assert "train accuracy" in capsys.readouterr().out
    # the hinge-trained energy separates the three spiral arms (a linear one gets about 0.5)
    assert accuracies[0] > 0.85
    # the example is reproducible as written: a copy-paste prints the same number every time
    assert accuracies[0] == accuracies[1]


def test_getting_started_first_energy(capsys):
    text = (ROOT / "docs/getting-started.md").read_text(encoding="utf-8")
    section = text.split("## A first energy", 1)[1].split("\n## ", 1)[0]
    (block,) = _python_blocks(section)
    namespace: dict = {"__name__": "getting_started"}
    with torch.random.fork_rng():  # MLPEnergy's initialisation draws from the global RNG
        exec(compile(block, "getting-started.md:first-energy", "exec"), namespace)
    y = namespace["y"]
    # the standard Gaussian's energy ½‖y‖², one per sample, and its score −y, as the comments say
    torch.testing.assert_close(namespace["energy"](y), 0.5 * (y**2).sum(-1))
    torch.testing.assert_close(namespace["energy"].score(y), -y)
    out = capsys.readouterr().out
    assert "tensor([0., 1.])" in out
    assert namespace["learned"](y).shape == (2,)


@pytest.mark.parametrize("name", PLACES)
def test_install_lines_name_the_distribution(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert "pip install ebm-torch" in text
    # `pip install ebm` or 'ebm[...]' would install an unrelated project of that name
    assert not re.search(r"pip install ['\"]?ebm(\[|['\"\s]|$)", text, re.M)
