"""The data generators' old argument names (0.1) still work until 0.3: each warns with a
DeprecationWarning naming the new argument and gives exactly the data of the new name."""

from __future__ import annotations

import pytest
import torch

from ebm import data as D


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (function, old keyword arguments, the same call with the new names)
RENAMES = {
    "ring_of_gaussians": (
        D.ring_of_gaussians,
        dict(n=50, std=0.3, seed=4),
        dict(n=50, noise=0.3, generator=_g(4)),
    ),
    "grid_of_gaussians": (
        D.grid_of_gaussians,
        dict(n=50, std=0.3, seed=4),
        dict(n=50, noise=0.3, generator=_g(4)),
    ),
    "two_moons": (D.two_moons, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "pinwheel": (D.pinwheel, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "checkerboard": (D.checkerboard, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "parabola": (D.parabola, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "coin_flips": (D.coin_flips, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "spiral": (
        D.spiral,
        dict(n_per_class=20, angle_noise=0.5, seed=4),
        dict(n_per_class=20, noise=0.5, generator=_g(4)),
    ),
    "ellipse": (D.ellipse, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "horn": (D.horn, dict(n=50, seed=4), dict(n=50, generator=_g(4))),
    "x_sin_x": (
        D.x_sin_x,
        dict(n=50, noise_std=0.5, seed=4),
        dict(n=50, noise=0.5, generator=_g(4)),
    ),
    "digits": (D.digits, dict(split="test", seed=4), dict(split="test", generator=_g(4))),
    "rotated_digit": (
        D.rotated_digit,
        dict(index=5, angles=[0.0, 45.0], seed=4),
        dict(index=5, angles=[0.0, 45.0], generator=_g(4)),
    ),
}
NEW_NAME = {"seed": "generator", "std": "noise", "angle_noise": "noise", "noise_std": "noise"}


def _equal(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_equal(u, v) for u, v in zip(a, b))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("name", sorted(RENAMES))
def test_old_names_warn_and_give_the_same_data(name):
    function, old, new = RENAMES[name]
    renamed = [k for k in old if k in NEW_NAME]
    with pytest.warns(DeprecationWarning) as caught:
        by_old_names = function(**old)
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    for key in renamed:  # one warning per old name, naming the new one
        assert any(
            f"{key!r} is deprecated" in m and f"use {NEW_NAME[key]!r}" in m for m in messages
        )
    assert _equal(by_old_names, function(**new))


def test_old_and_new_name_together_is_a_type_error():
    with pytest.raises(TypeError, match="both 'seed'.*'generator'"):
        D.two_moons(5, seed=1, generator=_g(1))
    with pytest.raises(TypeError, match="both 'std'.*'noise'"):
        D.ring_of_gaussians(5, std=0.1, noise=0.1)


def test_a_bad_old_seed_is_refused_by_its_old_name():
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="seed"):
        D.two_moons(5, seed=-1)


def test_digits_old_default_seed_is_the_canonical_split():
    with pytest.warns(DeprecationWarning):
        old = D.digits("train", seed=0)
    assert _equal(old, D.digits("train"))
