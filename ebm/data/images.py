"""scikit-learn's bundled 8×8 handwritten digits (1797 real images): the offline image default."""

from __future__ import annotations

import torch
from torch import Tensor

from ebm._checks import check_choice, make_generator


def digits(split: str = "all", test_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Images (N, 1, 8, 8) as float32 in [0, 1] and labels (N,) int64.

    split: "all", or "train"/"test" from one shuffled split of ``test_fraction`` fixed by ``seed``.
    """
    check_choice("split", split, ("all", "train", "test"))
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    if split == "all":
        return images, labels
    order = torch.randperm(len(labels), generator=make_generator(seed))
    n_test = round(test_fraction * len(labels))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return images[idx], labels[idx]
