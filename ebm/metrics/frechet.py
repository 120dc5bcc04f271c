"""Fréchet distance between Gaussian fits of features, and a small digit classifier to supply them.

    FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})

the 2-Wasserstein distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (squared), as in FID (Heusel et al.
2017), but on the penultimate features of a classifier trained here, on the 8×8 digits or on MNIST,
instead of Inception. The classifier trains deterministically on first use (seconds for digits)
and is cached under ``$EBM_CACHE`` (default ``$XDG_CACHE_HOME/ebm`` or ``~/.cache/ebm``); the
cache loads with ``torch.load(weights_only=True)``. Training forks the global RNG and restores it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import as_float_tensor, check_choice
from ebm.models._batch import labelled_batch

__all__ = [
    "frechet_distance",
    "gaussian_frechet_distance",
    "frechet_classifier_distance",
    "classifier_features",
    "digit_classifier",
    "DigitClassifier",
]

_VERSION = 2  # bump when the architecture or training schedule changes
_FEATURES = 64
_MEMO: dict[str, nn.Module] = {}  # cache path -> loaded classifier
_NAMES: dict[tuple, str] = {}  # MNIST training files (path, size, mtime) -> cache name


def gaussian_frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> Tensor:
    """FD between N(mu1, cov1) and N(mu2, cov2): mu (D,), cov (D, D) symmetric PSD. 0-dim, float64.

    Inputs are tensors or array-likes, finite. A covariance must be symmetric and positive
    semi-definite up to √eps of its dtype relative to its scale (max |entry|, largest |eigenvalue|):
    anything else raises a ``ValueError`` naming it, instead of returning a meaningless distance.
    tr((Σ₁Σ₂)^{1/2}) is computed as Σ √λ of the symmetric PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}, which
    shares its eigenvalues with Σ₁Σ₂: no complex sqrtm, no spurious imaginary parts.
    """
    mu1, cov1 = as_float_tensor("mu1", mu1, ndim=1), as_float_tensor("cov1", cov1, ndim=2)
    mu2, cov2 = as_float_tensor("mu2", mu2, ndim=1), as_float_tensor("cov2", cov2, ndim=2)
    d = mu1.shape[0]
    if d < 1 or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"need mu (D,) and cov (D, D) with one D >= 1, got mu1 {tuple(mu1.shape)}, cov1 "
            f"{tuple(cov1.shape)}, mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}"
        )
    device = mu1.device
    covs = [_symmetric_psd(name, c.to(device)) for name, c in (("cov1", cov1), ("cov2", cov2))]
    return _frechet(mu1.double(), covs[0], mu2.to(device).double(), covs[1])


def _symmetric_psd(name: str, cov: Tensor) -> Tensor:
    """cov as float64, symmetrised, after checking it is symmetric PSD within √eps of its dtype."""
    tol = torch.finfo(cov.dtype).eps ** 0.5
    cov = cov.double()
    scale = cov.abs().max()
    asymmetry = (cov - cov.T).abs().max()
    if bool(asymmetry > tol * scale):
        raise ValueError(
            f"{name} must be a symmetric covariance matrix, got max |{name} − {name}ᵀ| = "
            f"{asymmetry.item():.3g} for entries up to {scale.item():.3g} (tolerance "
            f"{tol:.2g} relative)"
        )
    cov = (cov + cov.T) / 2
    eigenvalues = torch.linalg.eigvalsh(cov)
    if bool(eigenvalues[0] < -tol * eigenvalues.abs().max()):
        raise ValueError(
            f"{name} must be positive semi-definite (a covariance matrix), got smallest "
            f"eigenvalue {eigenvalues[0].item():.3g} (largest {eigenvalues[-1].item():.3g})"
        )
    return cov


def _frechet(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> Tensor:
    """The closed form on float64 moments already known to be valid."""
    vals, vecs = torch.linalg.eigh(cov1)
    root1 = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    middle = root1 @ cov2 @ root1
    tr_cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * tr_cross


def frechet_distance(x: Tensor, y: Tensor) -> Tensor:
    """FD between Gaussian fits (mean, unbiased covariance) of features x (N, D) and y (M, D).

    N, M >= 2, D >= 1; tensors or array-likes, finite. Computed in float64 (0-dim result).

    >>> import torch
    >>> x = torch.tensor([[0.0], [2.0]])  # mean 1, unbiased variance 2
    >>> frechet_distance(x, x + 3.0)  # only the means differ: ‖μ₁ − μ₂‖² = 9
    tensor(9., dtype=torch.float64)
    """
    return _feature_distance(x, y, ("x", "y"))


def _feature_distance(x: object, y: object, names: tuple[str, str]) -> Tensor:
    x, y = as_float_tensor(names[0], x, ndim=2), as_float_tensor(names[1], y, ndim=2)
    if x.shape[1] != y.shape[1] or x.shape[1] < 1 or len(x) < 2 or len(y) < 2:
        raise ValueError(
            f"{names[0]} and {names[1]} must be (N, D) and (M, D) with N, M >= 2 and D >= 1, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    x, y = x.double(), y.to(x.device).double()
    return _frechet(
        x.mean(0),
        torch.cov(x.T).reshape(x.shape[1], -1),
        y.mean(0),
        torch.cov(y.T).reshape(y.shape[1], -1),
    )


# ---- the feature network ------------------------------------------------------------------------


class DigitClassifier(nn.Module):
    """A small CNN for (B, 1, 8, 8) or (B, 1, 28, 28) digits: ``features`` (B, 64), logits (B, 10).

    size: the image side, 8 (scikit-learn's digits) or 28 (MNIST). ``digit_classifier`` returns
    a trained, cached one.
    """

    def __init__(self, size: int):
        super().__init__()
        check_choice("size", size, (8, 28))
        self.size = size
        k, p = (3, 1) if size == 8 else (5, 2)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, k, stride=1 if size == 8 else 2, padding=p),
            nn.ReLU(),
            nn.Conv2d(16, 32, k, stride=2, padding=p),
            nn.ReLU(),
            nn.Flatten(),
        )  # 8 -> 8 -> 4; 28 -> 14 -> 7
        side = 4 if size == 8 else 7
        self.fc = nn.Linear(32 * side * side, _FEATURES)
        self.head = nn.Linear(_FEATURES, 10)

    def features(self, images: Tensor) -> Tensor:
        """The penultimate ReLU features (B, 64) of images (B, 1, size, size) in [0, 1]."""
        return F.relu(self.fc(self.conv(images)))

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (B, 10) of images (B, 1, size, size) in [0, 1]."""
        return self.head(self.features(images))

    # trainable through the shared Trainer
    def training_step(self, batch: list[Tensor]) -> Tensor:
        """batch: [images (B, 1, size, size), labels (B,)] (anything else raises a ValueError
        naming ``batch``). Returns the mean cross-entropy."""
        images, labels = labelled_batch(batch, "[images (B, 1, size, size), labels (B,)]")
        return F.cross_entropy(self(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with learning rate 1e-3 (the fixed schedule the cache name stands for)."""
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _cache_dir() -> Path:
    if os.environ.get("EBM_CACHE"):
        return Path(os.environ["EBM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ebm"


def _train(model: DigitClassifier, images: Tensor, labels: Tensor, epochs: int, batch: int) -> None:
    """A fixed, deterministic schedule through the shared Trainer (CPU, Adam 1e-3, seed 0)."""
    from ebm.train import Trainer

    Trainer(
        max_epochs=epochs,
        batch_size=batch,
        device="cpu",
        seed=0,
        progress=False,
        log_every_n_steps=None,
        tensorboard=False,
    ).fit(model, (images, labels))


def _fingerprint(images: Tensor, labels: Tensor) -> str:
    """A short content hash of a training set: the cache key of the classifier trained on it."""
    digest = hashlib.sha1(labels.to(torch.int64).numpy().tobytes())
    digest.update((images * 255).round().to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def _mnist_training_set(root: str | Path) -> tuple[str, Tensor | None, Tensor | None]:
    """(cache name, images, labels) of the training split in ``root``. The content hash is
    remembered per file identity (path, size, mtime), so later calls read no data: (name, None,
    None)."""
    from ebm.data.images import mnist, mnist_files

    files = mnist_files(root, train=True)
    stamp = tuple(
        (str(f.resolve()), st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]
    )
    if stamp in _NAMES:
        return _NAMES[stamp], None, None
    images, labels = mnist(root, train=True)
    _NAMES[stamp] = f"mnist_{_fingerprint(images, labels)}"
    return _NAMES[stamp], images, labels


def _cached_mnist_classifiers() -> list[Path]:
    return sorted(_cache_dir().glob(f"mnist_*_classifier_v{_VERSION}.pt"))


def digit_classifier(
    dataset: str = "digits", mnist_root: str | Path | None = None
) -> DigitClassifier:
    """The repository's feature classifier, trained on first use and cached (eval mode, CPU).

    dataset: "digits" (scikit-learn's 8×8 training split) or "mnist": trained on the training
    split in ``mnist_root`` (the folder of the IDX files; see ``ebm.data.mnist``) and cached under
    a hash of those images and labels, so a different folder never reuses a stale classifier.
    Without ``mnist_root`` the one cached MNIST classifier is used.
    """
    check_choice("dataset", dataset, ("digits", "mnist"))
    if mnist_root is not None and not isinstance(mnist_root, (str, os.PathLike)):
        raise ValueError(f"mnist_root must be a path (str or PathLike) or None, got {mnist_root!r}")
    images = labels = None
    if dataset == "digits":
        name = "digits"
    elif mnist_root is not None:
        name, images, labels = _mnist_training_set(mnist_root)
    else:
        cached = _cached_mnist_classifiers()
        if len(cached) != 1:
            raise ValueError(
                "mnist_root is needed to train the MNIST feature classifier once"
                if not cached
                else f"{len(cached)} MNIST classifiers are cached in {_cache_dir()}: pass "
                "mnist_root to choose the one trained on that folder"
            )
        name = cached[0].name.removesuffix(f"_classifier_v{_VERSION}.pt")
    path = _cache_dir() / f"{name}_classifier_v{_VERSION}.pt"
    if str(path) in _MEMO:
        return _MEMO[str(path)]
    size = 8 if dataset == "digits" else 28
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DigitClassifier(size)
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        if dataset == "digits":
            from ebm.data.images import digits

            images, labels = digits("train")
            epochs, batch = 12, 64
        else:
            if images is None:  # hashed earlier, but its classifier is no longer on disk
                from ebm.data.images import mnist

                images, labels = mnist(mnist_root, train=True)
            epochs, batch = 2, 128
        with torch.enable_grad():
            _train(model, images, labels, epochs, batch)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
        except OSError:
            pass  # an unwritable cache only costs retraining next time
    model.eval().requires_grad_(False)
    _MEMO[str(path)] = model
    return model


def classifier_features(images: Tensor, mnist_root: str | Path | None = None) -> Tensor:
    """Penultimate features (N, 64) of the digit classifier matching the image size (8 or 28).

    images: (N, 1, 8, 8) or (N, 1, 28, 28), N >= 1, finite, pixel values in [0, 1] as
    ``ebm.data.digits``/``mnist`` give them (a tensor or an array-like). The classifier is
    float32 on the CPU: images of any floating dtype or device are cast there. Bool images become
    0/1; integer images must already be 0/1 (raw 0–255 pixels raise a ``ValueError``: divide
    them by 255 first).
    mnist_root: for 28×28 images, the folder of the MNIST IDX files the classifier is trained on
    the first time (see ``digit_classifier``); None uses the one cached MNIST classifier.
    Unused for 8×8 digits.
    """
    return _features(_images("images", images), mnist_root)


def _images(name: str, value: object) -> Tensor:
    """A validated float image batch (N, 1, 8, 8) or (N, 1, 28, 28); see ``classifier_features``."""
    images = as_float_tensor(name, value, ndim=4)
    if images.shape[1:] not in ((1, 8, 8), (1, 28, 28)) or len(images) == 0:
        raise ValueError(
            f"{name} must be (N, 1, 8, 8) digits or (N, 1, 28, 28) MNIST with N >= 1, got "
            f"{tuple(images.shape)}"
        )
    if isinstance(value, Tensor):
        integer = not value.is_floating_point() and value.dtype != torch.bool
    else:
        integer = np.asarray(value).dtype.kind in "iu"
    if integer and bool((images > 1).any()):
        raise ValueError(
            f"{name} holds integer pixels up to {images.max().item():.0f}: the classifier reads "
            "values in [0, 1], so scale them first (e.g. images / 255)"
        )
    return images


@torch.no_grad()
def _features(images: Tensor, mnist_root: str | Path | None) -> Tensor:
    model = digit_classifier("digits" if images.shape[-1] == 8 else "mnist", mnist_root)
    return torch.cat([model.features(b.float().cpu()) for b in images.split(1024)])


def frechet_classifier_distance(
    fake: Tensor, real: Tensor, mnist_root: str | Path | None = None
) -> Tensor:
    """FD between classifier features of generated and real digit images (N, 1, H, W), H = 8 or 28.

    fake, real: as for ``classifier_features``, N, M >= 2, both of one size (features of the
    8×8 and the MNIST classifier are not comparable). mnist_root: as for
    ``classifier_features`` (28×28 images only). Lower is better; 0 for identical feature
    statistics. Comparable only at equal sample sizes. Returns a 0-dim float64 tensor.
    """
    fake, real = _images("fake", fake), _images("real", real)
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(
            f"fake and real must be images of one size, got {tuple(fake.shape)} and "
            f"{tuple(real.shape)}"
        )
    return _feature_distance(
        _features(fake, mnist_root), _features(real, mnist_root), ("fake", "real")
    )
