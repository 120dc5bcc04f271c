"""A digit turned step by step: the notes' probe of classifier uncertainty (ch. 21, fig. 21.8)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ebm._checks import as_float_tensor, check_generator, check_int, check_nonempty
from ebm._deprecation import renamed_arguments, seed_to_generator
from ebm.data.images import digits

__all__ = ["rotate_images", "rotated_digit"]


def rotate_images(images: Tensor, angles: Tensor) -> Tensor:
    """Rotate each of images (N, 1, H, W) by angles (N,) degrees, anticlockwise, about the centre
    (bilinear, zero padding). Both finite, tensors or array-likes (integers become floats), with
    N >= 1; the result has the images' dtype."""
    images = check_nonempty("images", as_float_tensor("images", images, ndim=4))
    angles = as_float_tensor("angles", angles, ndim=1)
    if angles.shape[0] != images.shape[0]:
        raise ValueError(
            f"angles must have one entry per image ({images.shape[0]}), got {angles.shape[0]}"
        )
    theta = angles.to(images.dtype) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    # affine_grid maps output coordinates to input ones: rotate the grid the other way
    affine = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(affine, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@renamed_arguments(seed=("generator", seed_to_generator))
def rotated_digit(
    index: int = 0,
    angles: Tensor | None = None,
    split: str = "test",
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, int]:
    """One 8×8 digit (scikit-learn's) seen at a sequence of rotations.

    index: which image of ``digits(split, generator=generator)``, an int in [0, N); split:
    "all", "train" or "test"; generator: the split's shuffle, None for the canonical split (see
    ``digits``: the same digit on every call). angles: (A,) finite degrees, A >= 1, a tensor or
    an array-like (default 12 steps from 0 to 165). Returns images (A, 1, 8, 8) in [0, 1], the
    angles (A,) float32 and the true label.

    >>> images, angles, label = rotated_digit(index=3, angles=[0.0, 90.0])
    >>> images.shape, angles.tolist()
    (torch.Size([2, 1, 8, 8]), [0.0, 90.0])
    """
    if angles is None:
        angles = torch.linspace(0.0, 165.0, 12)
    angles = check_nonempty("angles", as_float_tensor("angles", angles, ndim=1).float())
    check_generator("generator", generator, "cpu")
    images, labels = digits(split, generator=generator)
    check_int("index", index, minimum=0, maximum=len(labels) - 1)
    image = images[index : index + 1].expand(len(angles), -1, -1, -1)
    return rotate_images(image, angles).clamp(0.0, 1.0), angles, int(labels[index])
