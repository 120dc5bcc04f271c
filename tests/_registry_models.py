"""Bad-input registry, part 2: ``ebm.models`` and ``ebm.bayes``.

Estimators (PCA, KMeans, GaussianMixture) and Bayesian predictors validate every data-taking
method. The generative ``nn.Module`` models validate what evaluates or generates data (energy
and log-likelihood of a VAE, samplers, interpolation) and propagate NaN through their forward
passes (encode, decode, discriminator energies, the denoiser and the velocity field).
"""

from __future__ import annotations

import torch
from _bad_values import (
    Choice,
    Data,
    Fn,
    Fw,
    Int,
    Labels,
    Module,
    Real,
    Reals,
    Sizes,
    Skip,
    V,
    det,
    gen,
    net,
    rand,
    randn,
)
from _registry_posthoc import POSTHOC

import ebm.bayes as bayes
import ebm.models as M
from ebm.models.vae import mlp_decoder, mlp_encoder

POSITIVE = Real(0, None, low_inclusive=False)
NONNEGATIVE = Real(0)
PROBABILITY = Real(0, 1)
ACTIVATION = Skip("a layer class")
ADAM_BETAS = Reals(low=0, high=1, high_inclusive=False)
DEVICE = Choice()
B = 6


# ---- closed-form estimators -------------------------------------------------------------------


def _Y(n: int = 12, d: int = 3, seed: int = 0) -> torch.Tensor:
    return randn(n, d, seed=seed) * torch.tensor([3.0, 1.0, 0.3])[:d]


def _pca() -> M.PCA:
    return M.PCA(2).fit(_Y())


def _kmeans() -> M.KMeans:
    return M.KMeans(2, n_init=1, max_iter=5, seed=0).fit(_Y())


def _gmm() -> M.GaussianMixture:
    return M.GaussianMixture(2, n_init=1, max_iter=5, seed=0).fit(_Y())


def _fitted(cls, *data):
    """Construct, then fit: scikit-learn's convention (``__init__`` stores, ``fit`` validates),
    so a bad hyper-parameter must be rejected by then, before any work."""

    def build_and_fit(**hyper):
        return cls(**hyper).fit(*(data or (_Y(),)))

    return build_and_fit


QUERY = Data(trailing=True)  # (B, D): the fitted D
IGNORED = Skip("ignored, as in scikit-learn (pipelines pass their targets here)")
# (N,) weights of the 12 rows of _Y(), in [0.5, 1.5): rounded to ints they stay positive
WEIGHTS = Data(given=lambda: 0.5 + rand(12, seed=2))
QUERY_WEIGHTS = Data(given=lambda: 0.5 + rand(4, seed=2))  # (B,) weights of the 4 query rows


def _gmm_inits(kind: str = "full") -> dict:
    """Valid initial weights (2,), means (2, 3) and precisions for a 2-component GMM on _Y()."""
    precisions = {
        "full": torch.eye(3).expand(2, 3, 3).clone(),
        "tied": torch.eye(3),
        "diag": torch.ones(2, 3),
        "spherical": torch.ones(2),
    }[kind]
    return dict(
        weights_init=torch.tensor([0.5, 0.5]),
        means_init=_Y()[:2].clone(),
        precisions_init=precisions,
    )


ESTIMATORS = {
    "ebm.models.PCA": V(
        lambda: (_fitted(M.PCA), dict(n_components=2)), solver=Choice(), whiten=Choice()
    ),
    "ebm.models.PCA.fit": V(lambda: (M.PCA(2).fit, dict(Y=_Y())), y=IGNORED),
    "ebm.models.PCA.fit_transform": V(lambda: (M.PCA(2).fit_transform, dict(Y=_Y())), y=IGNORED),
    "ebm.models.PCA.get_params": V(lambda: (M.PCA(2).get_params, {})),
    "ebm.models.PCA.transform": V(lambda: (_pca().transform, dict(Y=_Y(4, seed=1))), Y=QUERY),
    "ebm.models.PCA.score_samples": V(
        lambda: (_pca().score_samples, dict(Y=_Y(4, seed=1))), Y=QUERY
    ),
    "ebm.models.PCA.score": V(lambda: (_pca().score, dict(Y=_Y(4, seed=1))), Y=QUERY, y=IGNORED),
    "ebm.models.PCA.inverse_transform": V(
        lambda: (_pca().inverse_transform, dict(Z=randn(4, 2, seed=1))), Z=QUERY
    ),
    "ebm.models.PCA.energy": V(lambda: (_pca().energy, dict(Y=_Y(4, seed=1))), Y=QUERY),
    "ebm.models.KMeans": V(
        lambda: (_fitted(M.KMeans), dict(n_clusters=2, n_init=1, max_iter=5, seed=0)),
        init=Choice(),
        tol=NONNEGATIVE,
    ),
    **{
        f"ebm.models.KMeans.{name}": V(
            lambda name=name: (
                getattr(M.KMeans(2, n_init=1, max_iter=5, seed=0), name),
                dict(Y=_Y(), sample_weight=0.5 + rand(12, seed=2)),
            ),
            y=IGNORED,
            sample_weight=WEIGHTS,
        )
        for name in ("fit", "fit_predict", "fit_transform")
    },
    "ebm.models.KMeans.get_params": V(lambda: (M.KMeans(2).get_params, {})),
    "ebm.models.KMeans.predict": V(lambda: (_kmeans().predict, dict(Y=_Y(4, seed=1))), Y=QUERY),
    "ebm.models.KMeans.transform": V(lambda: (_kmeans().transform, dict(Y=_Y(4, seed=1))), Y=QUERY),
    "ebm.models.KMeans.score": V(
        lambda: (_kmeans().score, dict(Y=_Y(4, seed=1), sample_weight=0.5 + rand(4, seed=2))),
        Y=QUERY,
        y=IGNORED,
        sample_weight=QUERY_WEIGHTS,
    ),
    "ebm.models.KMeans.energy": V(lambda: (_kmeans().energy, dict(Y=_Y(4, seed=1))), Y=QUERY),
    "ebm.models.KMeans.free_energy": V(
        lambda: (_kmeans().free_energy, dict(Y=_Y(4, seed=1), beta=2.0)),
        Y=QUERY,
        beta=Real(0, None, low_inclusive=False, inf=True),
    ),
    "ebm.models.GaussianMixture": V(
        lambda: (_fitted(M.GaussianMixture), dict(n_components=2, n_init=1, max_iter=5, seed=0)),
        covariance_type=Choice(),
        tol=NONNEGATIVE,
        reg_covar=NONNEGATIVE,
        weights_init=Data(given=lambda: _gmm_inits()["weights_init"]),
        means_init=Data(given=lambda: _gmm_inits()["means_init"]),
        precisions_init=Data(given=lambda: _gmm_inits()["precisions_init"]),
    ),
    **{
        f"ebm.models.GaussianMixture.{name}": V(
            lambda name=name: (
                getattr(M.GaussianMixture(2, n_init=1, max_iter=5, seed=0), name),
                dict(Y=_Y()),
            ),
            y=IGNORED,
        )
        for name in ("fit", "fit_predict")
    },
    "ebm.models.GaussianMixture.get_params": V(lambda: (M.GaussianMixture(2).get_params, {})),
    **{
        f"ebm.models.GaussianMixture.{name}": V(
            lambda name=name: (getattr(_gmm(), name), dict(Y=_Y(4, seed=1))),
            Y=QUERY,
            **({"y": IGNORED} if name == "score" else {}),
        )
        for name in ("score_samples", "energy", "score", "predict_proba", "predict", "aic", "bic")
    },
    "ebm.models.GaussianMixture.sample": V(lambda: (_gmm().sample, dict(n=4, generator=gen(1)))),
}


# ---- autoencoders -----------------------------------------------------------------------------


def _dae() -> M.DenoisingAutoencoder:
    return det(M.DenoisingAutoencoder(net(3, 2), net(2, 3, seed=1), sigma=0.1))


def _cae() -> M.ContractiveAutoencoder:
    # a nonlinear encoder: a linear one has one Jacobian everywhere, NaN inputs or not
    return det(M.ContractiveAutoencoder(net(3, 4, 2), net(2, 3, seed=1)))


def _linear_ae() -> M.LinearAutoencoder:
    return det(M.LinearAutoencoder(3, 2, seed=0))


Y3 = Data(ndim=False, empty=False)  # (B, ...) through the user's encoder and decoder
Y3_KNOWN = Data(trailing=True, empty=False)  # (B, dim): the model knows dim

AUTOENCODERS = {
    "ebm.models.DenoisingAutoencoder": V(
        lambda: (M.DenoisingAutoencoder, dict(encoder=net(3, 2), decoder=net(2, 3))),
        encoder=Module(),
        decoder=Module(),
        noise=Choice(),
        sigma=POSITIVE,
        p=Real(0, 1, high_inclusive=False),
        lr=POSITIVE,
        weight_decay=NONNEGATIVE,
    ),
    "ebm.models.ContractiveAutoencoder": V(
        lambda: (M.ContractiveAutoencoder, dict(encoder=net(3, 2), decoder=net(2, 3))),
        encoder=Module(),
        decoder=Module(),
        jacobian_weight=NONNEGATIVE,
        lr=POSITIVE,
        weight_decay=NONNEGATIVE,
    ),
    "ebm.models.LinearAutoencoder": V(
        lambda: (M.LinearAutoencoder, dict(dim=3, n_components=2, seed=0)), lr=POSITIVE
    ),
    "ebm.models.DenoisingAutoencoder.mlp": V(
        lambda: (M.DenoisingAutoencoder.mlp, dict(dim=3, hidden=(4,), code_dim=2)),
        hidden=Sizes(empty_ok=True),
        activation=ACTIVATION,
        sigma=POSITIVE,
    ),
    "ebm.models.ContractiveAutoencoder.mlp": V(
        lambda: (M.ContractiveAutoencoder.mlp, dict(dim=3, hidden=(4,), code_dim=2)),
        hidden=Sizes(empty_ok=True),
        activation=ACTIVATION,
        jacobian_weight=NONNEGATIVE,
    ),
    "ebm.models.DenoisingAutoencoder.corrupt": Fw(
        lambda: (_dae().corrupt, dict(y=randn(B, 3))), y=Y3
    ),
    "ebm.models.ContractiveAutoencoder.contractive_penalty": Fw(
        lambda: (_cae().contractive_penalty, dict(y=randn(B, 3))), y=Y3
    ),
    "ebm.models.LinearAutoencoder.encode": Fw(
        lambda: (_linear_ae().encode, dict(y=randn(B, 3))), y=Y3_KNOWN
    ),
    "ebm.models.LinearAutoencoder.reconstruct": Fw(
        lambda: (_linear_ae().reconstruct, dict(y=randn(B, 3))), y=Y3_KNOWN
    ),
    "ebm.models.LinearAutoencoder.forward": Fw(
        lambda: (_linear_ae(), dict(y=randn(B, 3))),
        y=Y3_KNOWN,
        x=Skip("unconditional: x is ignored"),
    ),
    "ebm.models.LinearAutoencoder.energy": Fw(
        lambda: (_linear_ae().energy, dict(y=randn(B, 3))),
        y=Y3_KNOWN,
        x=Skip("unconditional: x is ignored"),
    ),
}
for _name, _make in (("DenoisingAutoencoder", _dae), ("ContractiveAutoencoder", _cae)):
    for _method in ("reconstruct", "field", "energy"):
        AUTOENCODERS[f"ebm.models.{_name}.{_method}"] = Fw(
            lambda make=_make, method=_method: (getattr(make(), method), dict(y=randn(B, 3))), y=Y3
        )
    AUTOENCODERS[f"ebm.models.{_name}.forward"] = Fw(
        lambda make=_make: (make(), dict(y=randn(B, 3))),
        y=Y3,
        x=Skip("unconditional: x is ignored"),
    )


# ---- generative models ------------------------------------------------------------------------


def _vae(likelihood: str = "bernoulli") -> M.VAE:
    return det(
        M.VAE(mlp_encoder((4,), 2, (8,)), mlp_decoder((4,), 2, (8,)), 2, likelihood=likelihood)
    )


def _gan() -> M.GAN:
    return M.GAN(net(2, 8, 3), net(3, 8, 1, seed=1), latent_dim=2)


def _ebm_model(jumps: int = 0) -> M.EBM:
    return M.EBM(
        det(M.LinearAutoencoder(2, 1, seed=0)),
        (2,),
        n_steps=2,
        buffer_size=8,
        seed=0,
        jumps=jumps,
        clamp=(-1.0, 1.0) if jumps else None,
    )


def _jem() -> M.JEM:
    return M.JEM(det(net(3, 8, 4)), (3,), 4, n_steps=2, buffer_size=8, seed=0)


def _diffusion() -> M.Diffusion:
    return det(M.Diffusion(2, hidden=(8,), T=8, schedule="cosine", time_features=2))


def _cnf() -> M.CNF:
    return det(M.CNF(2, hidden=(4,), method="rk4", step_size=0.5))


Y_UNIT = Data(trailing=True, empty=False)  # (B, 4) in [0, 1] for the Bernoulli VAE

GENERATIVE = {
    "ebm.models.VAE": V(
        lambda: (
            M.VAE,
            dict(
                encoder=mlp_encoder((4,), 2, (8,)), decoder=mlp_decoder((4,), 2, (8,)), latent_dim=2
            ),
        ),
        encoder=Module(),
        decoder=Module(),
        likelihood=Choice(),
        beta=NONNEGATIVE,
        lr=POSITIVE,
        sigma=POSITIVE,
    ),
    "ebm.models.VAE.encode": Fw(
        lambda: (_vae().encode, dict(y=rand(B, 4))), out=lambda r: r[0], y=Y_UNIT
    ),
    "ebm.models.VAE.decode": Fw(
        lambda: (_vae().decode, dict(z=randn(B, 2))), z=Data(ndim=False, empty=False)
    ),
    "ebm.models.VAE.reconstruct": V(
        lambda: (_vae().reconstruct, dict(y=rand(B, 4))), y=Data(trailing=True)
    ),
    "ebm.models.VAE.elbo_terms": Fw(
        lambda: (_vae().elbo_terms, dict(y=rand(B, 4), generator=gen(1))),
        out=lambda r: r["recon"] + r["kl"],
        y=Y_UNIT,
    ),
    "ebm.models.VAE.energy": V(
        lambda: (_vae().energy, dict(y=rand(B, 4), n_samples=2, generator=gen(1))),
        y=Data(trailing=True),
    ),
    "ebm.models.VAE.log_likelihood": V(
        lambda: (_vae().log_likelihood, dict(y=rand(B, 4), n_samples=2, generator=gen(1))),
        y=Data(trailing=True),
    ),
    "ebm.models.VAE.sample": V(lambda: (_vae().sample, dict(n=3, generator=gen(1)))),
    "ebm.models.VAE.interpolate": V(
        lambda: (_vae().interpolate, dict(y_a=rand(4), y_b=rand(4, seed=1), steps=3)),
        y_a=Data(trailing=True, empty=False),
        y_b=Data(trailing=True, empty=False),
        steps=Int(2),
    ),
    "ebm.models.GAN": V(
        lambda: (M.GAN, dict(generator=net(2, 3), discriminator=net(3, 1), latent_dim=2)),
        generator=Module(),
        discriminator=Module(),
        loss=Choice(),
        lr=POSITIVE,
        lr_d=POSITIVE,
        betas=ADAM_BETAS,
        gp_weight=POSITIVE,
        margin=POSITIVE,
        r1_weight=NONNEGATIVE,
    ),
    "ebm.models.GAN.energy": Fw(
        lambda: (_gan().energy, dict(y=randn(B, 3))), y=Data(ndim=False, empty=False)
    ),
    "ebm.models.GAN.logits": Fw(
        lambda: (_gan().logits, dict(y=randn(B, 3))), y=Data(ndim=False, empty=False)
    ),
    "ebm.models.GAN.sample": V(lambda: (_gan().sample, dict(n=3, generator=gen(1)))),
    "ebm.models.GAN.discriminator_loss": Fw(
        lambda: (_gan().discriminator_loss, dict(real=randn(B, 3), fake=randn(B, 3, seed=1))),
        out=lambda r: r["loss"],
        rows=False,
        real=Data(ndim=False, empty=False),
        fake=Data(ndim=False, empty=False),
    ),
    "ebm.models.GAN.generator_loss": Fw(
        lambda: (_gan().generator_loss, dict(fake=randn(B, 3))),
        rows=False,
        fake=Data(ndim=False, empty=False),
    ),
    "ebm.models.BernoulliGenerator": V(
        lambda: (M.BernoulliGenerator, dict(features=2, p=0.3)), p=Real(0, 1, False, False)
    ),
    "ebm.models.BernoulliGenerator.forward": Fw(
        lambda: (M.BernoulliGenerator(2, 0.3), dict(z=randn(B, 2))),
        z=Data(trailing=True, empty=False),
    ),
    "ebm.models.EBM": V(
        lambda: (
            M.EBM,
            dict(energy=det(M.LinearAutoencoder(2, 1)), data_shape=(2,), buffer_size=8, seed=0),
        ),
        energy=Module(),
        data_shape=Sizes(),
        chains=Choice(),
        step_size=POSITIVE,
        noise_scale=NONNEGATIVE,
        clamp=Skip("walked through ebm.sampling.langevin"),
        buffer_size=Int(1),
        reinit_prob=PROBABILITY,
        init_noise=Choice(),
        init_scale=POSITIVE,
        alpha=NONNEGATIVE,
        lr=POSITIVE,
        betas=ADAM_BETAS,
        lr_decay_steps=Int(1),
        lr_final_ratio=PROBABILITY,
        jumps=Int(0),
    ),
    "ebm.models.EBM.forward": Fw(lambda: (_ebm_model(), dict(y=randn(B, 2))), y=Y3_KNOWN),
    "ebm.models.EBM.noise": V(lambda: (_ebm_model().noise, dict(n=3))),
    "ebm.models.EBM.langevin": V(
        lambda: (_ebm_model().langevin, dict(x0=randn(B, 2), n_steps=2)),
        x0=Data(trailing=True, finite=False),  # a sampler's start: NaN propagates, no sync
        n_steps=Int(0),
    ),
    "ebm.models.EBM.mcmc": V(
        lambda: (_ebm_model(jumps=1).mcmc, dict(x0=rand(B, 2), n_steps=4)),
        x0=Data(trailing=True, finite=False),  # a sampler's start: NaN propagates, no sync
        n_steps=Int(0),
    ),
    "ebm.models.EBM.sample": V(lambda: (_ebm_model().sample, dict(n=3, n_steps=2)), n_steps=Int(0)),
    "ebm.models.JEM": V(
        lambda: (M.JEM, dict(classifier=det(net(3, 8, 4)), data_shape=(3,), n_classes=4, seed=0)),
        classifier=Module(),
        data_shape=Sizes(),
        n_classes=Int(2),
        generative_weight=NONNEGATIVE,
        n_steps=Int(1),
        step_size=POSITIVE,
        noise_scale=NONNEGATIVE,
        clamp=Skip("walked through ebm.sampling.langevin"),
        buffer_size=Int(1),
        reinit_prob=PROBABILITY,
        init_noise=Choice(),
        init_scale=POSITIVE,
        alpha=NONNEGATIVE,
        data_noise=NONNEGATIVE,
        lr=POSITIVE,
        betas=ADAM_BETAS,
        weight_decay=NONNEGATIVE,
        warmup_steps=Int(0),
    ),
    **{
        f"ebm.models.JEM.{name}": V(
            lambda name=name: (getattr(_jem(), name), dict(x=randn(B, 3))),
            x=Data(trailing=True),
        )
        for name in ("energy", "logits", "predict_proba")
    },
    "ebm.models.JEM.forward": Fw(
        lambda: (_jem(), dict(x=randn(B, 3))), x=Data(ndim=False, empty=False)
    ),
    "ebm.models.JEM.sample": V(
        lambda: (_jem().sample, dict(n=3, y=torch.tensor([0, 3, 1]), n_steps=2, generator=gen(1))),
        y=Labels(4),
        n_steps=Int(0),
    ),
    "ebm.models.Diffusion": V(
        lambda: (M.Diffusion, dict(dim=2, hidden=(8,), T=8, schedule="cosine", time_features=2)),
        hidden=Sizes(empty_ok=True),
        schedule=Choice(),
        betas=Data(promote=False, given=lambda: torch.linspace(0.1, 0.6, 8)),
        lr=POSITIVE,
        max_alpha_bar_T=Real(0, 1, low_inclusive=False),
    ),
    "ebm.models.Diffusion.eps_model": Fw(
        lambda: (
            _diffusion().eps_model,
            dict(x=randn(B, 2), t=torch.tensor([1.0, 2.5, 3.0, 8.0, 5.0, 1.0])),
        ),
        x=Data(trailing=True, empty=False),
        t=Data(ndim=False, empty=False),  # (B,) steps, may be fractional
    ),
    "ebm.models.Diffusion.q_sample": Fw(
        lambda: (
            _diffusion().q_sample,
            dict(x0=randn(B, 2), t=torch.tensor([1, 2, 3, 8, 5, 1]), noise=randn(B, 2, seed=1)),
        ),
        x0=Data(trailing=True, empty=False),
        t=Skip(
            "integer step indices: an index, walked as part of q_sample's x0/noise shape checks"
        ),
        noise=Data(trailing=True, empty=False),
    ),
    "ebm.models.Diffusion.sample": V(
        # method="ddim" so that n_steps and eta are read (other methods refuse them by name)
        lambda: (_diffusion().sample, dict(n=3, method="ddim", n_steps=4, generator=gen(1))),
        method=Choice(),
        rtol=POSITIVE,
        atol=POSITIVE,
        n_steps=Int(1, 8),  # T = 8
        eta=Real(0),
    ),
    "ebm.models.Diffusion.log_prob": V(
        lambda: (
            _diffusion().log_prob,
            dict(x=randn(B, 2), divergence="hutchinson", rtol=1e-3, atol=1e-3, generator=gen(1)),
        ),
        x=Data(trailing=True),
        divergence=Choice(),
        rtol=POSITIVE,
        atol=POSITIVE,
    ),
    "ebm.models.CNF": V(
        lambda: (M.CNF, dict(dim=2, hidden=(4,), method="rk4", step_size=0.5)),
        hidden=Sizes(empty_ok=True),
        activation=ACTIVATION,
        divergence=Choice(),
        method=Choice(),
        rtol=POSITIVE,
        atol=POSITIVE,
        step_size=POSITIVE,
        lr=POSITIVE,
        objective=Choice(),
        pairing=Choice(),
        sigma_min=Real(0, 1, high_inclusive=False),
    ),
    "ebm.models.CNF.velocity": Fw(
        lambda: (_cnf().velocity, dict(t=torch.tensor(0.5), y=randn(B, 2))),
        t=Data(ndim=False, empty=False, rows=False, promote=False),
        y=Data(ndim=False, empty=False),
    ),
    # an adaptive ODE solve cannot carry a NaN row (see ebm.inference.flow): these validate
    "ebm.models.CNF.log_prob": V(
        lambda: (_cnf().log_prob, dict(y=randn(B, 2), generator=gen(1))), y=Data(trailing=True)
    ),
    "ebm.models.CNF.energy": V(lambda: (_cnf().energy, dict(y=randn(B, 2))), y=Data(trailing=True)),
    "ebm.models.CNF.forward": V(lambda: (_cnf(), dict(y=randn(B, 2))), y=Data(trailing=True)),
    "ebm.models.CNF.sample": V(lambda: (_cnf().sample, dict(n=3, generator=gen(1)))),
    "ebm.models.CNF.flow_matching_loss": V(
        lambda: (_cnf().flow_matching_loss, dict(y=randn(B, 2), generator=gen(1))),
        y=Data(trailing=True),
    ),
}


# ---- Bayesian predictors ----------------------------------------------------------------------


def _x(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.linspace(-2, 2, n)[:, None] + 0.01 * randn(n, 1, seed=seed)


def _y(n: int = 8) -> torch.Tensor:
    return torch.sin(_x(n))


def _predicting(cls):
    """Construct, then predict: hyper-parameters used only at predict time may be checked there."""

    def build_and_predict(**hyper):
        return cls(**hyper).predict(_x())

    return build_and_predict


def _dropout_net() -> torch.nn.Module:
    return det(
        torch.nn.Sequential(
            torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1)
        )
    )


def _ensemble() -> bayes.DeepEnsemble:
    return bayes.DeepEnsemble(lambda: net(1, 4, 1), n_members=2, max_epochs=2, device="cpu")


def _gp() -> bayes.GPRegressor:
    return bayes.GPRegressor(n_steps=2, device="cpu")


def _svi() -> bayes.SVIRegressor:
    return bayes.SVIRegressor(sizes=(1, 4, 1), max_epochs=2, n_samples=3, seed=0, device="cpu")


def _logits() -> torch.Tensor:
    return randn(4, B, 3)  # (T, B, C)


def _laplace(hessian: str = "full") -> bayes.LastLayerLaplace:
    return bayes.LastLayerLaplace(net(1, 4, 1), "regression", hessian).fit(_x(), _y())


def _swag_callback() -> bayes.SWAGCallback:
    """Three snapshots of a small net, its weights moved deterministically between them."""
    model, callback = net(1, 4, 1), bayes.SWAGCallback(max_rank=3)
    for seed in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * randn(*p.shape, seed=seed))
        callback.collect(model)
    return callback


def _swag() -> bayes.SWAG:
    return bayes.SWAG(net(1, 4, 1), _swag_callback())


def _swag_predicting(**hyper):
    return bayes.SWAG(**hyper).predict(_x(), n_samples=2, generator=gen(0))


XQ = Data(trailing=True)  # (B, 1) queries of a model fitted on (N, 1)
X_NET = Data(ndim=False)  # (B, ...) through the user's net: its shape is the net's business
LOGITS = Data(ndim=False, rows=1)  # a Prediction or (T, B, C) logits
BAYES = {
    # a Prediction refuses NaN/inf and negative variances: a diverged prediction is reported
    # where it is made (its docstring)
    "ebm.bayes.Prediction": V(
        lambda: (bayes.Prediction, dict(mean=randn(B, 1), var=rand(B, 1), samples=randn(3, B, 1))),
        mean=Data(ndim=False, empty=False, trailing=True),
        var=Data(ndim=False, empty=False, trailing=True),
        samples=Data(ndim=False, empty=False, trailing=True),
    ),
    "ebm.bayes.Prediction.from_samples": V(
        lambda: (bayes.Prediction.from_samples, dict(samples=randn(3, B, 1), noise_var=0.1)),
        samples=Data(ndim=False, empty=False),
        noise_var=NONNEGATIVE,
    ),
    "ebm.bayes.Prediction.interval": V(
        lambda: (bayes.Prediction(randn(B, 1), rand(B, 1)).interval, dict(level=0.9)),
        level=Real(0, 1, False, False),
    ),
    "ebm.bayes.mean_probs": V(
        lambda: (bayes.mean_probs, dict(prediction=_logits())), prediction=LOGITS
    ),
    "ebm.bayes.predictive_entropy": V(
        lambda: (bayes.predictive_entropy, dict(prediction=_logits())), prediction=LOGITS
    ),
    "ebm.bayes.expected_entropy": V(
        lambda: (bayes.expected_entropy, dict(prediction=_logits())), prediction=LOGITS
    ),
    "ebm.bayes.mutual_information": V(
        lambda: (bayes.mutual_information, dict(prediction=_logits())), prediction=LOGITS
    ),
    "ebm.bayes.notes_regression_net": V(
        lambda: (bayes.notes_regression_net, dict(p=0.1)),
        activation=ACTIVATION,
        p=Real(0, 1, high_inclusive=False),
    ),
    "ebm.bayes.caffe_lenet": V(
        lambda: (bayes.caffe_lenet, dict(p=0.1)), p=Real(0, 1, high_inclusive=False)
    ),
    "ebm.bayes.dropout_modules": V(lambda: (bayes.dropout_modules, dict(net=_dropout_net()))),
    "ebm.bayes.tau_from": V(
        lambda: (
            bayes.tau_from,
            dict(length_scale=1.0, keep_prob=0.9, n_data=10, weight_decay=1e-3),
        ),
        length_scale=POSITIVE,
        keep_prob=Real(0, 1, low_inclusive=False),
        weight_decay=POSITIVE,
        loss=Choice(),
    ),
    "ebm.bayes.MCDropout": V(
        lambda: (_predicting(bayes.MCDropout), dict(net=_dropout_net(), n_samples=4, seed=0)),
        tau=POSITIVE,
    ),
    "ebm.bayes.MCDropout.predict": V(
        lambda: (bayes.MCDropout(_dropout_net(), n_samples=4, seed=0).predict, dict(x=_x())),
        x=X_NET,
    ),
    "ebm.bayes.MCDropout.sample": V(
        lambda: (bayes.MCDropout(_dropout_net(), n_samples=4, seed=0).sample, dict(x=_x())), x=X_NET
    ),
    "ebm.bayes.Supervised": V(
        lambda: (bayes.Supervised, dict(net=net(1, 1))),
        loss=Choice(),
        optimizer=Choice(),
        lr=POSITIVE,
        weight_decay=NONNEGATIVE,
        momentum=Real(0, 1, high_inclusive=False),
    ),
    "ebm.bayes.Supervised.forward": Fw(
        lambda: (bayes.Supervised(net(1, 4, 1)), dict(x=_x())), x=Data(ndim=False, empty=False)
    ),
    "ebm.bayes.DeepEnsemble": V(
        lambda: (
            _fitted(bayes.DeepEnsemble, _x(), _y()),
            dict(make_net=lambda: net(1, 1), n_members=2, max_epochs=2, device="cpu"),
        ),
        make_net=Fn(),
        n_members=Int(2),
        loss=Choice(),
        optimizer=Choice(),
        lr=POSITIVE,
        weight_decay=NONNEGATIVE,
        noise_var=NONNEGATIVE,
        device=DEVICE,
        normalize_y=Choice(),  # a flag, validated: True or False
    ),
    "ebm.bayes.DeepEnsemble.get_params": V(lambda: (_ensemble().get_params, {})),
    "ebm.bayes.GPRegressor.get_params": V(lambda: (_gp().get_params, {})),
    "ebm.bayes.SVIRegressor.get_params": V(lambda: (_svi().get_params, {})),
    "ebm.bayes.DeepEnsemble.fit": V(
        lambda: (_ensemble().fit, dict(x=_x(), y=_y())), x=X_NET, y=Data(trailing=True)
    ),
    "ebm.bayes.DeepEnsemble.predict": V(
        lambda: (_ensemble().fit(_x(), _y()).predict, dict(x=_x(4, 1))), x=X_NET
    ),
    "ebm.bayes.GPRegressor": V(
        lambda: (_fitted(bayes.GPRegressor, _x(), _y()), dict(n_steps=2, device="cpu")),
        lengthscale=POSITIVE,
        variance=POSITIVE,
        noise=POSITIVE,
        lr=POSITIVE,
        n_steps=Int(0),
        jitter=POSITIVE,
        device=DEVICE,
        optimizer=Choice(),
        normalize_y=Choice(),  # a flag, validated: True or False
    ),
    "ebm.bayes.GPRegressor.fit": V(
        lambda: (_gp().fit, dict(x=_x(), y=_y())), x=Data(ndim=(1, 2)), y=Data(ndim=(1, 2))
    ),
    "ebm.bayes.GPRegressor.predict": V(
        lambda: (_gp().fit(_x(), _y()).predict, dict(x=_x(4, 1))),
        x=Data(ndim=(1, 2), trailing=True),  # (B,) or (B, D)
    ),
    "ebm.bayes.SVIRegressor": V(
        lambda: (
            _fitted(bayes.SVIRegressor, _x(), _y()),
            dict(sizes=(1, 4, 1), max_epochs=2, n_samples=3, seed=0, device="cpu"),
        ),
        sizes=Sizes(),
        activation=Choice(),
        prior_scale=POSITIVE,
        noise_scale=POSITIVE,
        lr=POSITIVE,
        init_scale=POSITIVE,
        device=DEVICE,
        normalize_y=Choice(),  # a flag, validated: True or False
    ),
    "ebm.bayes.SVIRegressor.fit": V(
        lambda: (_svi().fit, dict(x=_x(), y=_y())), x=Data(trailing=True), y=Data(trailing=True)
    ),
    "ebm.bayes.SVIRegressor.predict": V(
        lambda: (_svi().fit(_x(), _y()).predict, dict(x=_x(4, 1))), x=XQ
    ),
    "ebm.bayes.LastLayerLaplace": V(
        lambda: (
            _fitted(bayes.LastLayerLaplace, _x(), _y()),
            dict(model=net(1, 4, 1), likelihood="regression"),
        ),
        model=Module(),
        likelihood=Choice(),
        hessian=Choice(),
        prior_precision=POSITIVE,
        sigma_noise=POSITIVE,
        last_layer=Module(),
    ),
    "ebm.bayes.LastLayerLaplace.fit": V(
        lambda: (bayes.LastLayerLaplace(net(1, 4, 1), "regression").fit, dict(x=_x(), y=_y())),
        x=X_NET,
        y=Data(ndim=(1, 2), trailing=True),  # (N, K), or (N,) when K = 1
    ),
    "ebm.bayes.LastLayerLaplace.predict": V(
        lambda: (_laplace().predict, dict(x=_x(4, 1))),
        x=X_NET,
        link_approx=Choice(),
    ),
    "ebm.bayes.LastLayerLaplace.functional_samples": V(
        lambda: (_laplace("kron").functional_samples, dict(x=_x(4, 1), generator=gen(0))),
        x=X_NET,
    ),
    "ebm.bayes.LastLayerLaplace.log_marginal_likelihood": V(
        lambda: (_laplace().log_marginal_likelihood, dict(prior_precision=0.5)),
        prior_precision=POSITIVE,
    ),
    "ebm.bayes.LastLayerLaplace.optimize_prior_precision": V(
        lambda: (_laplace().optimize_prior_precision, dict(method="marglik")), method=Choice()
    ),
    "ebm.bayes.SWAGCallback": V(
        lambda: (bayes.SWAGCallback, dict(start_epoch=1)),
        start_epoch=Int(0),
        collect_every=Int(1),
        max_rank=Int(2),
    ),
    "ebm.bayes.SWAGCallback.collect": V(
        lambda: (bayes.SWAGCallback().collect, dict(model=net(1, 4, 1))), model=Module()
    ),
    "ebm.bayes.SWAG": V(
        lambda: (_swag_predicting, dict(model=net(1, 4, 1), swag=_swag_callback())),
        model=Module(),
        swag=Skip("a SWAGCallback or its state_dict (refusals: test_bayes_swag.py)"),
        noise_var=NONNEGATIVE,
    ),
    "ebm.bayes.SWAG.sample": V(lambda: (_swag().sample, dict(generator=gen(0)))),
    "ebm.bayes.SWAG.predict": V(
        lambda: (_swag().predict, dict(x=_x(4, 1), n_samples=2, generator=gen(0))), x=X_NET
    ),
}

MODELS = {**ESTIMATORS, **AUTOENCODERS, **GENERATIVE, **BAYES, **POSTHOC}
