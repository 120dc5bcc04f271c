"""Inference: minimise or marginalise an energy over the variables nobody observed.

- ``free_energy(E, beta, dim, average=False)``: F over a set of latent values, the min at β = ∞
  (zero temperature), −(1/β)·log Σ exp(−βE) at finite β (marginalisation; ``average=True``:
  −(1/β)·log mean exp(−βE), a uniform prior over the values).
- ``exhaustive_search``, ``gradient_descent``, ``lbfgs``: the minimiser and its energy, as a
  ``Minimum(argmin, energy)``; ``backprop`` chooses how gradients reach the energy's parameters.
- ``soft_dtw(cost, beta)``: elastic matching, the free energy of a (B, n, m) cost matrix over the
  monotone alignments of two sequences (DTW at β = ∞); ``expected_alignment`` is its gradient.
- ``flow(field, y0, t)`` integrates dy/dt = field(y); ``gradient_flow(energy, y0, t)`` is the
  deterministic inference dy/dt = −∇E(y) (torchdiffeq).

Sign convention everywhere: low energy = good. Submodules load lazily (torchdiffeq on first use).
"""

from ebm._lazy import lazy_namespace

_EXPORTS = {
    "free_energy": "marginal",
    "Minimum": "search",
    "exhaustive_search": "search",
    "gradient_descent": "search",
    "lbfgs": "search",
    "soft_dtw": "alignment",
    "expected_alignment": "alignment",
    "flow": "ode",
    "gradient_flow": "ode",
    "StepBudgetExceeded": "ode",
    "NonFiniteODEError": "ode",
}
__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
