"""ebm: energy-based and generative modelling in PyTorch.

An energy E(x, y) scores compatibility, low is good. Inference minimises it; training pushes it
down on data and up elsewhere. Submodules load lazily; importing ``ebm`` changes no global state.

Example: the hinge loss pushes the correct answer's energy below the most offending wrong one's
by a margin.

>>> import torch, ebm
>>> energies = torch.tensor([[0.0, 3.0, 0.5]])  # (B, K): one sample, three answers
>>> p, n = ebm.losses.correct_and_offending(energies, torch.tensor([0]))  # E[0], min of others
>>> ebm.losses.hinge_loss(p, n, margin=1.0)  # max(0, 1 + 0 − 0.5)
tensor(0.5000)
"""

from ebm._lazy import lazy_getattr
from ebm.energies import Energy

__version__ = "0.2.0"

_SUBMODULES = (
    "energies",
    "losses",
    "inference",
    "latent",
    "sampling",
    "score_matching",
    "models",
    "bayes",
    "metrics",
    "data",
    "train",
    "plot",
    "recipe",
)
__all__ = ["Energy", *_SUBMODULES]
__getattr__ = lazy_getattr(__name__, {name: name for name in _SUBMODULES})


def __dir__() -> list[str]:
    return sorted(__all__)
