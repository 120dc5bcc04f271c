"""Model families, one file each. Classes load lazily on first access."""

from ebm._lazy import lazy_getattr

_EXPORTS = {
    # classical energies (models/pca.py, kmeans.py, gmm.py, autoencoders.py)
    "PCA": "pca",
    "LinearAutoencoder": "pca",
    "KMeans": "kmeans",
    "GaussianMixture": "gmm",
    "DenoisingAutoencoder": "autoencoders",
    "ContractiveAutoencoder": "autoencoders",
    "NotFittedError": "_estimator",  # raised by PCA/KMeans/GaussianMixture before fit
    # generative models
    "VAE": "vae",
    "GAN": "gan",
    "BernoulliGenerator": "gan",
    "EBM": "ebm",
    "Diffusion": "diffusion",
    "CNF": "cnf",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
