"""Old argument names still work for one release, warn, and name the new argument."""

import inspect

import pytest
import torch

from ebm._deprecation import renamed_arguments, seed_to_generator


@renamed_arguments(steps="n_steps", seed=("generator", seed_to_generator))
def _draw(n: int, n_steps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n * n_steps, generator=generator)


def test_old_name_warns_naming_the_new_one_and_gives_the_same_result():
    with pytest.warns(DeprecationWarning, match="'steps' is deprecated.*use 'n_steps'"):
        old = _draw(2, steps=3)
    assert old.shape == (6,)
    with pytest.warns(DeprecationWarning, match="'seed'.*use 'generator'"):
        by_seed = _draw(4, seed=7)
    assert torch.equal(by_seed, _draw(4, generator=torch.Generator().manual_seed(7)))


def test_both_names_is_a_type_error_and_signature_shows_new_names():
    with pytest.raises(TypeError, match="both 'steps'.*'n_steps'"):
        _draw(2, steps=3, n_steps=3)
    assert list(inspect.signature(_draw).parameters) == ["n", "n_steps", "generator"]
