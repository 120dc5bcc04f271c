"""Data: toy generators and offline loaders. Nothing here downloads anything.

Each generator takes an explicit ``seed`` (or ``generator``) and never touches the global RNG.
"""

from ebm._lazy import lazy_getattr

_EXPORTS = {
    # 2-D toys (toy2d.py)
    "ring_of_gaussians": "toy2d",
    "grid_of_gaussians": "toy2d",
    "two_moons": "toy2d",
    "pinwheel": "toy2d",
    "checkerboard": "toy2d",
    "parabola": "toy2d",
    "coin_flips": "toy2d",
    # the notes' spiral (spiral.py)
    "spiral": "spiral",
    # latent-variable showcase (ellipse.py)
    "ellipse": "ellipse",
    "horn": "ellipse",
    # images (digits.py, mnist.py)
    "digits": "digits",
    "mnist": "mnist",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
