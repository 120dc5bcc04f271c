"""ebm: energy-based and generative modelling in PyTorch.

An energy E(x, y) scores compatibility, low is good. Inference minimises it; training pushes it
down on data and up elsewhere. Submodules load lazily; importing ``ebm`` changes no global state.
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
