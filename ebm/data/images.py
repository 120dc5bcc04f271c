"""Offline image data: scikit-learn's bundled 8×8 handwritten digits (1797 real images), the
default, and MNIST read from the standard IDX files in a folder the user points to."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import torch
from torch import Tensor

from ebm._checks import check_choice, check_generator, check_real
from ebm._deprecation import renamed_arguments, seed_to_generator

__all__ = ["digits", "mnist", "mnist_files"]

_CANONICAL_SPLIT_SEED = 0  # digits(split="train"/"test") without a generator: this split


@renamed_arguments(seed=("generator", seed_to_generator))
def digits(
    split: str = "all",
    test_fraction: float = 0.2,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """scikit-learn's 8×8 handwritten digits: images (N, 1, 8, 8) float32 in [0, 1], labels
    (N,) int64 (1797 images in all).

    split: "all" (in scikit-learn's order), or "train"/"test", the two parts of one shuffled
    split that holds out ``test_fraction`` (in (0, 1); 0.2 gives 359 test images).
    generator: the source of the shuffle. None (the default) gives THE canonical split, the
    same on every call and every machine (the permutation of a generator seeded with 0), so
    ``digits("train")`` and ``digits("test")`` never overlap. A generator gives another split and is advanced by the shuffle: for matching train and test
    halves pass two generators in the same state, e.g. ``torch.Generator().manual_seed(1)``
    each. (The old ``seed=k`` works until 0.3, with a DeprecationWarning: it is
    ``generator=torch.Generator().manual_seed(k)``, and k = 0 is the canonical split.)

    >>> train, test = digits("train"), digits("test")
    >>> len(train[0]), len(test[0]), train[0].shape[1:]
    (1438, 359, torch.Size([1, 8, 8]))
    """
    check_choice("split", split, ("all", "train", "test"))
    check_real("test_fraction", test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_generator("generator", generator, "cpu")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    if split == "all":
        return images, labels
    if generator is None:
        generator = torch.Generator().manual_seed(_CANONICAL_SPLIT_SEED)
    order = torch.randperm(len(labels), generator=generator)
    n_test = round(test_fraction * len(labels))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return images[idx], labels[idx]


# ---- MNIST from local IDX files ------------------------------------------------------------------

_MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08


def _find_idx(root: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``root`` or torchvision's ``root/MNIST/raw``."""
    for folder in (root, root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise ValueError(
        f"MNIST file {stem!r} (or {stem}.gz) not found in {str(root)!r} or "
        f"{str(root / 'MNIST' / 'raw')!r}; expected the four standard IDX files "
        f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        f"t10k-labels-idx1-ubyte (gzipped or not), as distributed by Yann LeCun's MNIST page"
    )


def _read_idx(path: Path, ndim: int) -> Tensor:
    """An unsigned-byte IDX array of ``ndim`` dimensions as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"cannot read IDX file {str(path)!r}: {err}") from err
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{str(path)!r} is not an IDX file: expected a header starting with two zero bytes "
            f"and {ndim} big-endian int32 sizes"
        )
    if raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise ValueError(
            f"{str(path)!r}: expected unsigned bytes (type 0x08) in {ndim} dimension(s), got "
            f"type 0x{raw[2]:02x} in {raw[3]} dimension(s)"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise ValueError(
            f"{str(path)!r} is truncated or corrupt: its header promises shape {shape} "
            f"({expected} bytes in all), the file has {len(raw)} bytes"
        )
    data = torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8)
    return data.reshape(shape)


def mnist_files(root: str | Path, train: bool = True) -> tuple[Path, Path]:
    """The (images, labels) IDX files that ``mnist(root, train)`` reads, found as it finds them.

    root: the folder (str or Path) holding the files (see ``mnist``); train: True for the
    training files, False for the test files. Returns two ``Path``s.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a folder path (str or Path), got {root!r}")
    check_choice("train", train, (True, False))
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"root must be an existing folder holding the MNIST IDX files, got {str(root)!r}"
        )
    image_stem, label_stem = _MNIST_FILES[bool(train)]
    return _find_idx(root, image_stem), _find_idx(root, label_stem)


def mnist(root: str | Path, train: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST from the standard IDX files in a local folder (nothing is downloaded).

    root: the folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally gzipped (``.gz``);
    torchvision's ``root/MNIST/raw`` layout also works. train: the 60 000 training images, else
    the 10 000 test images. Returns images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64.
    """
    image_file, label_file = mnist_files(root, train)
    images = _read_idx(image_file, ndim=3)
    labels = _read_idx(label_file, ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"MNIST files in {str(root)!r} disagree: {len(images)} images but {len(labels)} labels"
        )
    return images.unsqueeze(1).float() / 255.0, labels.long()
