import gzip
import struct

import pytest
import torch
from idx_files import idx_bytes, write_mnist_split

from ebm.data import digits, mnist


def _write_mnist(folder, n_train=5, n_test=3, gz=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        write_mnist_split(folder, prefix, images, labels, gz=gz)
        data[prefix] = (images, labels)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_round_trip(tmp_path, gz):
    data = _write_mnist(tmp_path, gz=gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = mnist(tmp_path, train=train)
        raw_images, raw_labels = data[prefix]
        assert images.shape == (len(raw_images), 1, 28, 28) and images.dtype == torch.float32
        assert torch.equal(images[:, 0], raw_images.float() / 255)
        assert labels.dtype == torch.int64 and torch.equal(labels, raw_labels.long())
        assert 0 <= images.min() and images.max() <= 1


def test_mnist_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    data = _write_mnist(raw, gz=True)
    assert torch.equal(mnist(tmp_path, train=False)[1], data["t10k"][1].long())


def test_mnist_missing_folder_and_file(tmp_path):
    with pytest.raises(ValueError, match="existing folder"):
        mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*not found.*four standard IDX"):
        mnist(tmp_path)


def test_mnist_truncated_file(tmp_path):
    _write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt.*shape \\(5, 28, 28\\)"):
        mnist(tmp_path)


def test_mnist_wrong_magic_and_type(tmp_path):
    _write_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04" + path.read_bytes()[4:])
    with pytest.raises(ValueError, match="not an IDX file"):
        mnist(tmp_path)
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 5) + bytes(20))
    with pytest.raises(ValueError, match="unsigned bytes \\(type 0x08\\).*type 0x0d"):
        mnist(tmp_path)


def test_mnist_corrupt_gzip_and_count_mismatch(tmp_path):
    _write_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        mnist(tmp_path, train=False)
    labels = torch.zeros(4, dtype=torch.uint8)  # 5 images but 4 labels
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        mnist(tmp_path)


def test_digits_split_is_a_partition():
    images, labels = digits()
    assert images.shape == (1797, 1, 8, 8) and 0 <= images.min() and images.max() == 1
    train, test = digits("train"), digits("test")
    assert len(train[0]) + len(test[0]) == 1797 and len(test[0]) == round(0.2 * 1797)
    pooled = torch.cat([train[0], test[0]]).flatten(1)
    assert torch.equal(pooled.sum(0), images.flatten(1).sum(0))


def test_digits_canonical_split_is_fixed_and_a_generator_gives_another():
    """No generator: one documented split (a permutation seeded with 0), the same on every call;
    a generator: another split, equal for equal generator states."""
    images, _ = digits()
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    canonical_test = digits("test")[0]
    assert torch.equal(canonical_test, images[order[:359]])
    assert torch.equal(digits("train")[0], images[order[359:]])
    other = digits("test", generator=torch.Generator().manual_seed(1))[0]
    assert not torch.equal(other, canonical_test)
    assert torch.equal(other, digits("test", generator=torch.Generator().manual_seed(1))[0])


def test_digits_and_mnist_arguments_are_validated_by_name(tmp_path):
    for kwargs, name in (
        ({"test_fraction": "0.2"}, "test_fraction"),
        ({"test_fraction": float("nan")}, "test_fraction"),
        ({"generator": -1}, "generator"),
        ({"generator": 2.5}, "generator"),
    ):
        with pytest.raises(ValueError, match=name):
            digits("train", **kwargs)
    with pytest.raises(ValueError, match="root"):
        mnist(None)
    with pytest.raises(ValueError, match="root"):
        mnist(3)
    with pytest.raises(ValueError, match="train"):
        mnist(tmp_path, train="no")  # a truthy string would silently pick the training set
