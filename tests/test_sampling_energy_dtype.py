"""Every sampler refuses an energy that does not return floats, before the chains start.

An integer energy (``(x**2).sum(1).long()``) has no gradient and truncates the energy
differences the Metropolis tests and importance weights read: each sampler raises one
ValueError naming ``energy`` on its first evaluation, after one energy call, and the
gradient-based chains leave the caller's generator untouched.
"""

from __future__ import annotations

import pytest
import torch

from ebm.sampling import (
    ais,
    grid_log_partition,
    grid_sample,
    hmc,
    langevin,
    log_likelihood,
    mala,
    parallel_tempering,
    reverse_ais,
    uniform_jump,
)

X0 = torch.linspace(-1.0, 1.0, 8).reshape(4, 2)

# name -> (call(energy, generator), whether the generator is untouched when the energy is refused)
SAMPLERS = {
    "langevin": (lambda e, g: langevin(e, X0, 3, 0.1, generator=g), True),
    "mala": (lambda e, g: mala(e, X0, 3, 0.1, generator=g), True),
    "hmc": (lambda e, g: hmc(e, X0, 3, 0.1, 2, generator=g), True),
    "parallel_tempering": (
        lambda e, g: parallel_tempering(e, X0, [1.0, 0.5], 3, 0.1, generator=g),
        True,
    ),
    "uniform_jump": (lambda e, g: uniform_jump(e, X0, 3, -1.0, 1.0, generator=g), True),
    "reverse_ais": (lambda e, g: reverse_ais(e, X0, 3, generator=g), True),
    "ais": (lambda e, g: ais(e, 2, 4, 3, generator=g), False),  # draws its start first
    "log_likelihood": (lambda e, g: log_likelihood(e, X0, 0.0, generator=g), True),
    "grid_sample": (lambda e, g: grid_sample(e, 3, -1.0, 1.0, dim=2, cells=4, generator=g), True),
    "grid_log_partition": (lambda e, g: grid_log_partition(e, -1.0, 1.0, dim=2, cells=4), True),
}

NOT_FLOATING = {
    "long": lambda x: (x**2).sum(1).long(),
    "int32 (B, 1)": lambda x: (x**2).sum(1, keepdim=True).int(),
    "bool": lambda x: (x**2).sum(1) > 0.5,
}


@pytest.mark.parametrize("kind", sorted(NOT_FLOATING))
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_non_floating_energy_is_refused_naming_energy_before_the_chains_run(name, kind):
    call, untouched = SAMPLERS[name]
    calls = []

    def energy(x):
        calls.append(x.shape)
        return NOT_FLOATING[kind](x)

    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    with pytest.raises(
        ValueError, match=r"energy must return a floating tensor.*got dtype torch\."
    ):
        call(energy, g)
    assert len(calls) == 1  # the first evaluation, nothing after it
    if untouched:
        assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_the_same_energy_in_floating_point_runs(name):
    """The control: the refusal is about the dtype, not the energy."""
    call, _ = SAMPLERS[name]
    call(lambda x: (x**2).sum(1), torch.Generator().manual_seed(0))
