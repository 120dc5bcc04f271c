import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from ebm.models import VAE
from ebm.models.vae import conv_decoder, conv_encoder, gaussian_kl, mlp_decoder, mlp_encoder
from ebm.train import Trainer


def test_kl_closed_form_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros(4), torch.ones(4))
    assert torch.allclose(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(1), atol=1e-6)


def _linear_gaussian_vae(exact_posterior: bool):
    """y = W z + b + σ ε with orthogonal columns of W: p(y) = N(b, W Wᵀ + σ² I) is exact, and
    the exact posterior N(M⁻¹Wᵀ(y − b)/σ², M⁻¹), M = I + WᵀW/σ², is diagonal, so a linear encoder
    can represent it."""
    D, d, sigma = 3, 2, 0.5
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    enc, dec = nn.Linear(D, 2 * d).double(), nn.Linear(d, D).double()
    with torch.no_grad():
        dec.weight.copy_(W), dec.bias.copy_(b)
        M_inv = torch.linalg.inv(torch.eye(d, dtype=torch.float64) + W.T @ W / sigma**2)
        A = M_inv @ W.T / sigma**2
        enc.weight.zero_(), enc.bias.zero_()
        enc.weight[:d], enc.bias[:d] = A, -A @ b
        enc.bias[d:] = M_inv.diagonal().log()
        if not exact_posterior:  # a deliberately poor posterior: shifted and too wide
            enc.bias[:d] += 0.5
            enc.bias[d:] += 1.0
    vae = VAE(enc, dec, d, likelihood="gaussian", sigma=sigma)
    evidence = MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(D, dtype=torch.float64))
    return vae, evidence


def test_energy_is_minus_log_evidence_with_the_exact_posterior():
    vae, evidence = _linear_gaussian_vae(exact_posterior=True)
    y = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_p = evidence.log_prob(y)
    # every importance weight equals p(y): the bound is exact for any K
    assert torch.allclose(vae.log_likelihood(y, n_samples=3), log_p, atol=1e-10)
    # the ELBO is exact too (KL(q ‖ posterior) = 0); its Monte Carlo estimate converges to it
    g = torch.Generator().manual_seed(1)
    assert torch.allclose(vae.energy(y, n_samples=4000, generator=g), -log_p, atol=0.03)


def test_elbo_below_iwae_which_tightens_with_k_towards_log_evidence():
    vae, evidence = _linear_gaussian_vae(exact_posterior=False)
    y = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    log_p = evidence.log_prob(y)
    g = torch.Generator().manual_seed(3)
    elbo = -vae.energy(y.repeat(20000, 1), generator=g).reshape(20000, len(y)).mean(0)
    means = []
    for k, repeats in ((1, 20000), (4, 5000), (16, 1000), (64, 300), (1024, 30)):
        # replicate the batch to average many independent estimates in one call
        values = vae.log_likelihood(y.repeat(repeats, 1), n_samples=k, generator=g)
        means.append(values.reshape(repeats, len(y)).mean(0))
    assert (elbo < log_p - 0.1).all()  # the poor posterior leaves a real gap
    assert torch.allclose(means[0], elbo, atol=0.1)  # K = 1 is the ELBO
    for small, large in zip(means, means[1:]):
        assert (large >= small - 0.03).all()  # non-decreasing in K on average
        assert (large <= log_p + 0.02).all()  # a lower bound
    assert torch.allclose(means[-1], log_p, atol=0.05)


def test_training_step_terms_and_beta():
    torch.manual_seed(0)  # module init only
    enc, dec = mlp_encoder((1, 8, 8), 3, hidden=(16,)), mlp_decoder((1, 8, 8), 3, hidden=(16,))
    y = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for beta in (0.0, 2.5):
        vae = VAE(enc, dec, 3, beta=beta)
        mu, logvar = vae.encode(y)
        out = vae.training_step(y)
        assert set(out) == {"loss", "recon", "kl"}
        assert out["kl"].item() == pytest.approx(gaussian_kl(mu, logvar).mean().item(), rel=1e-5)
        assert out["loss"].item() == pytest.approx(
            (out["recon"] + beta * out["kl"]).item(), rel=1e-6
        )


def test_bernoulli_reconstruction_term_is_binary_cross_entropy():
    dec = nn.Sequential(nn.Linear(2, 4), nn.Unflatten(1, (1, 2, 2)))
    enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
    with torch.no_grad():
        enc[1].weight.zero_()
        enc[1].bias.copy_(torch.tensor([0.3, -0.2, -60.0, -60.0]))  # σ ≈ 0: z = μ
    vae = VAE(enc, dec, 2)
    y = torch.tensor([[[[0.0, 1.0], [0.25, 1.0]]]])
    p = torch.sigmoid(dec(torch.tensor([[0.3, -0.2]])))
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).sum()
    kl = 0.5 * (0.3**2 + 0.2**2 + 2 * (math.exp(-60) - 1 + 60))
    assert vae.energy(y).item() == pytest.approx(bce.item() + kl, rel=1e-5)
    assert torch.allclose(vae.reconstruct(y), p)


def test_trains_through_the_trainer_and_lowers_the_energy():
    from ebm.data import digits

    images, _ = digits("train")
    images = images[:256]
    torch.manual_seed(0)
    vae = VAE(mlp_encoder((1, 8, 8), 4, (64,)), mlp_decoder((1, 8, 8), 4, (64,)), 4, lr=3e-3)
    g = torch.Generator().manual_seed(0)
    before = vae.energy(images, generator=g).mean().item()
    trainer = Trainer(max_epochs=10, batch_size=64, device="cpu", seed=0, progress=False)
    trainer.fit(vae, images)
    after = vae.energy(images, generator=g).mean().item()
    assert after < before - 5
    assert {"recon", "kl"} <= set(trainer.history[-1])
    assert vae.sample(16, generator=g).shape == (16, 1, 8, 8)
    path = vae.interpolate(images[0], images[1], steps=16)
    assert path.shape == (16, 1, 8, 8)
    assert torch.allclose(path[0], vae.reconstruct(images[:1])[0], atol=1e-6)
    assert torch.allclose(path[-1], vae.reconstruct(images[1:2])[0], atol=1e-6)


def test_conv_builders_shapes():
    for shape in ((1, 8, 8), (1, 28, 28)):
        enc, dec = conv_encoder(shape, 5), conv_decoder(shape, 5)
        assert enc(torch.zeros(2, *shape)).shape == (2, 10)
        assert dec(torch.zeros(2, 5)).shape == (2, *shape)


def test_bad_input():
    enc, dec = mlp_encoder((1, 8, 8), 2), mlp_decoder((1, 8, 8), 2)
    with pytest.raises(ValueError, match="latent_dim must be an int >= 1"):
        VAE(enc, dec, 0)
    with pytest.raises(ValueError, match=r"beta must be a finite real number in \[0.0, inf\)"):
        VAE(enc, dec, 2, beta=-0.1)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE(enc, dec, 2, likelihood="poisson")
    vae = VAE(enc, dec, 2)
    with pytest.raises(ValueError, match="y must have shape \\(B, 1, 8, 8\\) for this encoder"):
        vae.energy(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError, match="Bernoulli likelihood needs data in \\[0, 1\\]"):
        vae.energy(torch.rand(4, 1, 8, 8) * 2)
    with pytest.raises(ValueError, match="Bernoulli likelihood needs data in \\[0, 1\\]"):
        vae.training_step(torch.rand(4, 1, 8, 8) - 0.5)  # the first batch is checked
    with pytest.raises(ValueError, match="2·latent_dim"):
        VAE(enc, dec, 3).encode(torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        conv_encoder((1, 10, 10), 2)
    VAE(enc, dec, 2, likelihood="gaussian").energy(torch.rand(4, 1, 8, 8) * 2)  # any range is fine


def test_hyper_parameters_and_counts_are_validated_by_name():
    enc, dec = mlp_encoder((1, 4, 4), 2, hidden=(8,)), mlp_decoder((1, 4, 4), 2, hidden=(8,))
    for kwargs, name in (
        ({"beta": float("inf")}, "beta"),
        ({"beta": "1"}, "beta"),
        ({"sigma": float("nan")}, "sigma"),
        ({"lr": float("inf")}, "lr"),
        ({"latent_dim": 2.0}, "latent_dim"),
        ({"encoder": lambda y: y}, "encoder"),
    ):
        with pytest.raises(ValueError, match=name):
            VAE(**{"encoder": enc, "decoder": dec, "latent_dim": 2, **kwargs})
    vae = VAE(enc, dec, 2)
    y = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for n in (2.5, 0, True, "2"):
        with pytest.raises(ValueError, match="n_samples"):
            vae.energy(y, n_samples=n)
        with pytest.raises(ValueError, match="n_samples"):
            vae.log_likelihood(y, n_samples=n)
        with pytest.raises(ValueError, match="n must"):
            vae.sample(n)
    with pytest.raises(ValueError, match="steps"):
        vae.interpolate(y[0], y[1], steps=2.5)
    with pytest.raises(ValueError, match="input_shape"):
        mlp_encoder((1, 2.5), 2)
    with pytest.raises(ValueError, match="z must"):
        vae.decode(torch.zeros(2, 3))


def test_data_is_finite_checked_and_cast_to_the_parameters_dtype():
    enc, dec = mlp_encoder((1, 4, 4), 2, hidden=(8,)), mlp_decoder((1, 4, 4), 2, hidden=(8,))
    vae = VAE(enc, dec, 2)
    y = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    bad = y.clone()
    bad[0, 0, 0, 0] = float("nan")
    for method in (vae.energy, vae.log_likelihood, vae.reconstruct):
        with pytest.raises(ValueError, match="y contains"):
            method(bad)
    with pytest.raises(ValueError, match="y_a contains"):
        vae.interpolate(bad[0], y[1])

    def energy(data):
        return vae.energy(data, generator=torch.Generator().manual_seed(1))

    assert energy(y.double()).dtype == torch.float32
    torch.testing.assert_close(energy(y.double()), energy(y))
    torch.testing.assert_close(energy(y.tolist()), energy(y))
    binary = (y > 0.5).long()  # integer data is promoted, not rejected
    torch.testing.assert_close(energy(binary), energy(binary.float()))
    torch.testing.assert_close(vae.reconstruct(y.double()), vae.reconstruct(y))
    loss = vae.training_step(y.double())["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_builders_validate_widths_by_name():
    with pytest.raises(ValueError, match=r"hidden\[0\]"):
        mlp_encoder((1, 4, 4), 2, hidden=(2.5,))
    with pytest.raises(ValueError, match=r"hidden\[0\]"):
        mlp_decoder((1, 4, 4), 2, hidden=(0,))
    with pytest.raises(ValueError, match="channels"):
        conv_decoder((1, 8, 8), 2, channels=())
    with pytest.raises(ValueError, match=r"channels\[1\]"):
        conv_encoder((1, 8, 8), 2, channels=(8, -1))
