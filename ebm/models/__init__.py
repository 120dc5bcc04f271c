"""Model families, one file each. Classes load lazily on first access."""

from ebm._lazy import lazy_namespace

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
    "JEM": "jem",
    "Diffusion": "diffusion",
    "CNF": "cnf",
}
__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
