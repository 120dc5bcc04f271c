"""The README's core example runs as written and does what it says."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _core_example() -> str:
    text = README.read_text()
    section = re.search(r"<!-- section:core -->(.*?)<!-- /section:core -->", text, re.S)
    assert section, "README has no core section"
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert len(blocks) == 1, f"expected one python example in the core section, got {len(blocks)}"
    return blocks[0]


def test_core_example_trains_a_class_energy(capsys):
    namespace: dict = {"__name__": "readme_example"}
    with torch.random.fork_rng():  # the example seeds torch (via the Trainer): keep it local
        torch.manual_seed(0)  # its parameter initialisation, for a reproducible test
        exec(compile(_core_example(), "README.md:core", "exec"), namespace)
    assert "train accuracy" in capsys.readouterr().out
    # the hinge-trained energy separates the three spiral arms (a linear one gets about 0.5)
    assert namespace["accuracy"] > 0.85
