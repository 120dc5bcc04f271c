"""MNIST-format IDX files written from the specification, for tests of the MNIST code paths."""

import gzip
import struct
from pathlib import Path

import torch


def idx_bytes(array: torch.Tensor) -> bytes:
    """The IDX format: 0, 0, type 0x08 (uint8), ndim, big-endian sizes, then the raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def write_mnist_split(folder: Path, prefix: str, images, labels, gz: bool = False) -> None:
    """Write ``<prefix>-images-idx3-ubyte`` (N, 28, 28) and ``<prefix>-labels-idx1-ubyte`` (N,)."""
    for stem, array in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        payload = idx_bytes(array)
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)


def write_digits_as_mnist(
    folder: Path, n_train: int = 240, n_test: int = 60, offset: int = 0
) -> Path:
    """A tiny stand-in for MNIST: scikit-learn's 8×8 digits from index ``offset`` on, upscaled to
    28×28, written as gzipped IDX files (the first n_train for training, the next n_test for test)."""
    from ebm.data import digits

    images, labels = digits()
    n = n_train + n_test
    images, labels = images[offset : offset + n], labels[offset : offset + n]
    big = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear")
    big = (big[:, 0] * 255).round()
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, part in (("train", slice(0, n_train)), ("t10k", slice(n_train, n))):
        write_mnist_split(folder, prefix, big[part], labels[part], gz=True)
    return folder
