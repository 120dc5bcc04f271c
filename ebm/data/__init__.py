"""Data: toy generators and offline loaders. Nothing here downloads anything.

A submodule never shares its name with a function it exports (the import system would shadow
the function with the module).

Randomness: every generator takes ``generator=None``, a ``torch.Generator`` for reproducible
data; None draws from torch's global RNG, as ``torch.randn`` does. Train/test splits
(``digits(split=...)``, ``rotated_digit``) are the exception: None there is the documented
canonical split, the same on every call. ``noise`` is always the std of the Gaussian noise the
generator adds. The old names (``seed``, ``std``, ``noise_std``, ``angle_noise``) work until
0.3, with a DeprecationWarning.

>>> import torch, ebm
>>> y = ebm.data.ring_of_gaussians(1000, noise=0.05, generator=torch.Generator().manual_seed(0))
>>> centres = ebm.data.toy2d.ring_centers()  # (8, 2) on the circle of radius 2
>>> bool(torch.cdist(y, centres).min(1).values.max() < 0.5)  # every point near a mode
True
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
