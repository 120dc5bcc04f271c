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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import check_tensor

_VERSION = 2  # bump when the architecture or training schedule changes
_FEATURES = 64
_MEMO: dict[str, nn.Module] = {}  # cache path -> loaded classifier
_NAMES: dict[tuple, str] = {}  # MNIST training files (path, size, mtime) -> cache name


def gaussian_frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> Tensor:
    """FD between N(mu1, cov1) and N(mu2, cov2): mu (D,), cov (D, D) symmetric PSD. 0-dim, float64.

    tr((Σ₁Σ₂)^{1/2}) is computed as Σ √λ of the symmetric PSD matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}, which
    shares its eigenvalues with Σ₁Σ₂: no complex sqrtm, no spurious imaginary parts.
    """
    for name, t, nd in (("mu1", mu1, 1), ("cov1", cov1, 2), ("mu2", mu2, 1), ("cov2", cov2, 2)):
        check_tensor(name, t, ndim=nd)
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"need mu (D,) and cov (D, D) with one D, got mu1 {tuple(mu1.shape)}, cov1 "
            f"{tuple(cov1.shape)}, mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}"
        )
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    vals, vecs = torch.linalg.eigh(cov1)
    root1 = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    middle = root1 @ cov2 @ root1
    tr_cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * tr_cross


def frechet_distance(x: Tensor, y: Tensor) -> Tensor:
    """FD between Gaussian fits (mean, unbiased covariance) of features x (N, D) and y (M, D)."""
    check_tensor("x", x, ndim=2), check_tensor("y", y, ndim=2)
    if x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(
            f"x and y must be (N, D) and (M, D) with N, M >= 2, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    x, y = x.double(), y.double()
    return gaussian_frechet_distance(
        x.mean(0),
        torch.cov(x.T).reshape(x.shape[1], -1),
        y.mean(0),
        torch.cov(y.T).reshape(y.shape[1], -1),
    )


# ---- the feature network ------------------------------------------------------------------------


class DigitClassifier(nn.Module):
    """A small CNN for (B, 1, 8, 8) or (B, 1, 28, 28) digits: ``features`` (B, 64), logits (B, 10)."""

    def __init__(self, size: int):
        super().__init__()
        if size not in (8, 28):
            raise ValueError(f"size must be 8 (digits) or 28 (MNIST), got {size!r}")
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
        return F.relu(self.fc(self.conv(images)))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))

    # trainable through the shared Trainer
    def training_step(self, batch: list[Tensor]) -> Tensor:
        images, labels = batch
        return F.cross_entropy(self(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
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
    if dataset not in ("digits", "mnist"):
        raise ValueError(f"dataset must be 'digits' or 'mnist', got {dataset!r}")
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


@torch.no_grad()
def classifier_features(images: Tensor, mnist_root: str | Path | None = None) -> Tensor:
    """Penultimate features (N, 64) of the digit classifier matching the image size (8 or 28)."""
    check_tensor("images", images, ndim=4)
    if images.shape[1:] not in ((1, 8, 8), (1, 28, 28)):
        raise ValueError(
            f"images must be (N, 1, 8, 8) digits or (N, 1, 28, 28) MNIST, got {tuple(images.shape)}"
        )
    model = digit_classifier("digits" if images.shape[-1] == 8 else "mnist", mnist_root)
    return torch.cat([model.features(b.float().cpu()) for b in images.split(1024)])


def frechet_classifier_distance(
    fake: Tensor, real: Tensor, mnist_root: str | Path | None = None
) -> Tensor:
    """FD between classifier features of generated and real digit images (N, 1, H, W), H = 8 or 28.

    Lower is better; 0 for identical feature statistics. Comparable only at equal sample sizes.
    """
    return frechet_distance(
        classifier_features(fake, mnist_root), classifier_features(real, mnist_root)
    )
