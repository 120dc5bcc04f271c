"""Every public ``generator`` argument refuses what is not a ``torch.Generator`` (or None).

The bad-input walker (``test_bad_inputs.py``) skips generators ("a random source"); a seed, a
device name or a flag passed where a generator is meant used to reach torch's factory functions
and fail there with "randn() received an invalid combination of arguments", or to be ignored.
This walks the same registry: each valid call, with only ``generator`` replaced, must raise a
ValueError naming ``generator`` (``check_generator``'s message, which for an int says how to
seed one).
"""

from __future__ import annotations

import numpy as np
import pytest
import test_bad_inputs as walker
import torch
from _public_api import walked_parameters

WITH_GENERATOR = sorted(
    key
    for key in walker.WALKED
    for p in walked_parameters(walker.TARGETS[key])
    if p.name == "generator" and "Generator" in str(p.annotation)  # not GAN's network G
)
BAD = {
    "an int seed": 0,
    "a device name": "cpu",
    "a torch.device": torch.device("cpu"),
    "a bool": True,
    "a numpy Generator": np.random.default_rng(0),
}


def test_the_walk_finds_the_generator_arguments():
    assert len(WITH_GENERATOR) > 30
    assert "ebm.sampling.langevin" in WITH_GENERATOR
    assert "ebm.sampling.ReplayBuffer.sample" in WITH_GENERATOR
    assert "ebm.models.GAN.sample" in WITH_GENERATOR and "ebm.models.GAN" not in WITH_GENERATOR


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("key", WITH_GENERATOR)
def test_a_generator_that_is_not_one_is_refused_naming_generator(key, bad):
    fn, kwargs = walker.REGISTRY[key].make()
    with pytest.raises(ValueError, match=r"\bgenerator must be a torch\.Generator or None"):
        fn(**{**kwargs, "generator": BAD[bad]})
