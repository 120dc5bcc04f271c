"""What an energy must return: floating energies with an autograd path to the states.

An integer energy (``(x**2).sum(1).long()``) has no gradient and truncates the energy
differences the Metropolis tests and importance weights read: each sampler raises one
ValueError naming ``energy`` on its first evaluation, after one energy call, and the
gradient-based chains leave the caller's generator untouched. An energy with no autograd
path to its input (detached, computed in numpy, constant) is refused by everything that needs
∇ₓE, naming ``energy``.
"""

from __future__ import annotations

import pytest
import torch

from ebm.energies import Energy
from ebm.inference import gradient_descent, gradient_flow, lbfgs
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
from ebm.score_matching import exact_score_matching_loss, sliced_score_matching_loss

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


# ---- energies with no autograd path to their input ---------------------------------------------

NO_GRADIENT = {
    "detached": lambda x: (x**2).sum(1).detach(),
    "computed in numpy": lambda x: torch.as_tensor((x.detach().numpy() ** 2).sum(1)),
    "constant in x": lambda x: torch.zeros(len(x)),
}
X2 = X0.reshape(2, 2, 2)  # (restarts, batch, D) for the inference searches

GRADIENT_USERS = {
    "langevin": lambda e: langevin(e, X0, 3, 0.1),
    "mala": lambda e: mala(e, X0, 3, 0.1),
    "hmc": lambda e: hmc(e, X0, 3, 0.1, 2),
    "parallel_tempering": lambda e: parallel_tempering(e, X0, [1.0, 0.5], 3, 0.1),
    "ais": lambda e: ais(e, 2, 4, 3),
    "reverse_ais": lambda e: reverse_ais(e, X0, 3),
    "exact_score_matching_loss": lambda e: exact_score_matching_loss(e, X0),
    "sliced_score_matching_loss": lambda e: sliced_score_matching_loss(e, X0),
    "gradient_flow": lambda e: gradient_flow(e, X0, [0.0, 0.5]),
    "gradient_descent": lambda e: gradient_descent(e, X2, n_steps=2),
    "lbfgs": lambda e: lbfgs(e, X2, max_iter=2),
    "Energy.score": lambda e: _as_energy(e).score(X0),
}


def _as_energy(fn):
    class _Wrapped(Energy):
        def forward(self, y, x=None):
            return fn(y)

    return _Wrapped()


@pytest.mark.parametrize("kind", sorted(NO_GRADIENT))
@pytest.mark.parametrize("name", sorted(GRADIENT_USERS))
def test_an_energy_without_a_gradient_is_refused_naming_energy(name, kind):
    """These reached autograd's "element 0 of tensors does not require grad and does not have
    a grad_fn"; a detached energy must not be read as a flat one (a believable wrong chain)."""
    with pytest.raises(ValueError, match=r"energy must be differentiable in its input"):
        GRADIENT_USERS[name](NO_GRADIENT[kind])


def test_a_flat_energy_written_through_x_has_the_gradient_zero():
    """The remedy the error names: 0 * x.sum(1) is flat, so noiseless Langevin and gradient
    descent leave the states where they are, and the score is 0."""
    flat = lambda x: 0 * x.sum(1)  # noqa: E731
    assert torch.equal(langevin(flat, X0, 3, 0.1, noise_scale=0.0), X0)
    assert torch.equal(_as_energy(flat).score(X0), torch.zeros_like(X0))
    assert torch.equal(gradient_flow(flat, X0, [0.0, 0.5])[-1], X0)
