"""Data: toy generators and offline loaders. Nothing here downloads anything.

A submodule never shares its name with a function it exports (the import system would shadow
the function with the module).

Each generator takes an explicit ``seed`` (or ``generator``) and never touches the global RNG.
"""

from ebm._lazy import lazy_namespace

_EXPORTS = {
    # 2-D toys (toy2d.py)
    "ring_of_gaussians": "toy2d",
    "grid_of_gaussians": "toy2d",
    "two_moons": "toy2d",
    "pinwheel": "toy2d",
    "checkerboard": "toy2d",
    "parabola": "toy2d",
    "coin_flips": "toy2d",
    "spiral": "toy2d",
    # latent-variable showcase (latent_toys.py)
    "ellipse": "latent_toys",
    "horn": "latent_toys",
    # images (images.py)
    "digits": "images",
    "mnist": "images",
    # 1-D regression with an extrapolation region (regression.py)
    "x_sin_x": "regression",
    "mauna_loa_co2": "regression",
    "CO2Split": "regression",
    # a digit turned step by step (rotations.py)
    "rotated_digit": "rotations",
    "rotate_images": "rotations",
}
__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
