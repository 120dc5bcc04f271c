"""Sampling from energies p(x) ∝ exp(−E(x)): Langevin, MALA, HMC, a replay buffer, diagnostics.

Every sampler takes an energy (an ``ebm.Energy`` or any callable (B, ...) -> (B,), low = likely)
and initial states x0 (B, ...), runs all B chains in parallel, and never synchronises with the
host inside its loop.
"""

from ebm.sampling.diagnostics import effective_sample_size
from ebm.sampling.hmc import hmc
from ebm.sampling.langevin import langevin
from ebm.sampling.mala import mala
from ebm.sampling.replay import ReplayBuffer

__all__ = ["ReplayBuffer", "effective_sample_size", "hmc", "langevin", "mala"]
