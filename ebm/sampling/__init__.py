"""Sampling from energies p(x) ∝ exp(−E(x)): Langevin, MALA, HMC, uniform jumps, a replay
buffer, diagnostics, parallel tempering, and annealed importance sampling for log Z and
log-likelihoods, and exact grid draws and log Z for low-dimensional (1-D, 2-D) energies.

Every sampler takes an energy (an ``ebm.Energy`` or any callable (B, ...) -> (B,) floating
energies, low = likely; an integer or bool result is refused on the first call, naming ``energy``)
and initial states x0 (B, ...), runs all B chains in parallel, and never synchronises with the
host inside its loop. Samplers run inside EBM training's hot loop, so they validate their
hyper-parameters and x0's shape but never read x0's values: NaN (or inf) in a row of x0 propagates
to that chain's output row (a NaN state is never accepted away), and the other chains, which are
independent, are unaffected. The sampler modules are private (``_langevin.py`` ...): a module must not
share its name with the function it exports.
"""

from ebm.sampling._ais import AISResult, ais, log_likelihood, reverse_ais
from ebm.sampling._grid import grid_log_partition, grid_sample
from ebm.sampling._hmc import hmc
from ebm.sampling._jump import uniform_jump
from ebm.sampling._langevin import langevin
from ebm.sampling._mala import mala
from ebm.sampling._tempering import parallel_tempering
from ebm.sampling.diagnostics import effective_sample_size
from ebm.sampling.replay import ReplayBuffer

__all__ = [
    "AISResult",
    "ReplayBuffer",
    "ais",
    "effective_sample_size",
    "grid_log_partition",
    "grid_sample",
    "hmc",
    "langevin",
    "log_likelihood",
    "mala",
    "parallel_tempering",
    "reverse_ais",
    "uniform_jump",
]
