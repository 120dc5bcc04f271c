import math

import pytest
import torch
from torch import nn

from ebm.models import GAN
from ebm.models import gan_losses as L
from ebm.train import Trainer


def _logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(7, generator=g, dtype=torch.float64), torch.randn(
        5, generator=g, dtype=torch.float64
    )


def test_bce_losses_match_probabilities():
    real, fake = _logits()
    D_real, D_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected_d = 0.5 * (-(D_real.log()).mean() - (1 - D_fake).log().mean())
    assert torch.allclose(L.bce_discriminator_loss(real, fake), expected_d)
    assert torch.allclose(L.minimax_generator_loss(fake), (1 - D_fake).log().mean())
    assert torch.allclose(L.nonsaturating_generator_loss(fake), -D_fake.log().mean())
    # also torch's own BCE on the pooled batch of equal halves
    pooled = torch.cat([real[:5], fake])
    labels = torch.cat([torch.ones(5), torch.zeros(5)]).double()
    bce = nn.functional.binary_cross_entropy_with_logits(pooled, labels)
    assert torch.allclose(L.bce_discriminator_loss(real[:5], fake), bce)


def test_discriminator_loss_is_ln2_at_equilibrium():
    # D = 1/2 everywhere (logit 0): the discriminator cannot tell real from fake
    zeros = torch.zeros(10)
    assert L.bce_discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(2))


def test_wasserstein_hinge_and_ebgan_closed_forms():
    real, fake = _logits()
    assert torch.allclose(L.wasserstein_critic_loss(real, fake), fake.mean() - real.mean())
    assert torch.allclose(L.wasserstein_generator_loss(fake), -fake.mean())
    hinge = (
        sum(max(0.0, 1 - r) for r in real.tolist()) / 7
        + sum(max(0.0, 1 + f) for f in fake.tolist()) / 5
    )
    assert L.hinge_discriminator_loss(real, fake).item() == pytest.approx(hinge)
    assert torch.allclose(L.hinge_generator_loss(fake), -fake.mean())
    e_real, e_fake = real.abs(), fake.abs()
    margin = 0.8
    ebgan = e_real.mean() + sum(max(0.0, margin - e) for e in e_fake.tolist()) / 5
    assert L.ebgan_discriminator_loss(e_real, e_fake, margin).item() == pytest.approx(ebgan)
    assert torch.allclose(L.ebgan_generator_loss(e_fake), e_fake.mean())


def test_softplus_forms_are_stable_at_extreme_logits():
    big = torch.tensor([1e4, -1e4], requires_grad=True)
    real, fake = big, -big
    for loss in (
        L.bce_discriminator_loss(real, fake),
        L.minimax_generator_loss(fake),
        L.nonsaturating_generator_loss(fake),
    ):
        (grad,) = torch.autograd.grad(loss, big)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    # a perfect discriminator (real +1e4, fake -1e4) has zero loss; the reverse costs 1e4 per half
    assert L.bce_discriminator_loss(torch.tensor([1e4]), torch.tensor([-1e4])).item() == 0.0
    assert L.bce_discriminator_loss(
        torch.tensor([-1e4]), torch.tensor([1e4])
    ).item() == pytest.approx(1e4)
    # the generator rejected with confidence: non-saturating keeps a unit gradient, minimax none
    f = torch.tensor([-1e4], requires_grad=True)
    (g_ns,) = torch.autograd.grad(L.nonsaturating_generator_loss(f), f)
    (g_mm,) = torch.autograd.grad(L.minimax_generator_loss(f), f)
    assert g_ns.item() == pytest.approx(-1.0) and g_mm.item() == 0.0
    naive = torch.log(torch.sigmoid(torch.tensor(-1e4)))  # what the softplus form avoids
    assert torch.isinf(naive)


def test_gradient_penalty_on_a_linear_critic():
    # d(y) = y·w on (B, 2, 3) inputs: ∇d = w for every sample, so GP = (‖w‖ − 1)² exactly
    w = torch.arange(6.0).reshape(2, 3) / 10
    critic = lambda y: (y * w).flatten(1).sum(1)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g)
    gp = L.gradient_penalty(critic, real, fake, generator=g)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-6)


def test_gradient_penalty_is_per_sample_on_a_quadratic_critic():
    # d(y) = ½‖y‖²: ∇d(ŷ) = ŷ, so GP = mean_i (‖ŷ_i‖ − 1)², ŷ_i = ε_i x_i + (1 − ε_i) g_i
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(5, 3, 2, generator=g), torch.randn(5, 3, 2, generator=g)
    eps = torch.rand(5, generator=g)
    mixed = eps[:, None, None] * real + (1 - eps[:, None, None]) * fake
    expected = (mixed.flatten(1).norm(dim=1) - 1).pow(2).mean()
    gp = L.gradient_penalty(lambda y: 0.5 * y.pow(2).flatten(1).sum(1), real, fake, eps=eps)
    assert torch.allclose(gp, expected)
    # one global norm over the batch would differ
    assert not torch.allclose(gp, (mixed.norm() - 1).pow(2))


def _toy_gan(loss="nonsaturating", n_critic=1):
    G = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    if loss == "ebgan":
        D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    else:
        D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    return GAN(G, D, latent_dim=2, loss=loss, n_critic=n_critic)


def _count_steps(gan):
    counts = [0, 0]
    opts = gan.configure_optimizers

    def counting():
        optimizers = opts()
        for i, opt in enumerate(optimizers):
            step = opt.step

            def wrapped(*a, _step=step, _i=i, **k):
                counts[_i] += 1
                return _step(*a, **k)

            opt.step = wrapped
        return optimizers

    gan.configure_optimizers = counting
    return counts


@pytest.mark.parametrize("n_critic", [1, 3])
def test_n_critic_counts_optimiser_steps_through_the_trainer(n_critic):
    gan = _toy_gan("wgan-gp", n_critic=n_critic)
    counts = _count_steps(gan)
    data = torch.randn(48, 2, generator=torch.Generator().manual_seed(0))
    Trainer(max_epochs=2, batch_size=8, device="cpu", seed=0, progress=False).fit(gan, data)
    assert counts == [12 // n_critic, 12]  # 12 batches: 12 critic steps, 12 / n_critic G steps


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wgan-gp", "hinge", "ebgan"])
def test_every_loss_trains_and_exposes_an_energy(loss):
    gan = _toy_gan(loss)
    data = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    trainer = Trainer(max_epochs=1, batch_size=16, device="cpu", seed=0, progress=False)
    trainer.fit(gan, data)
    assert math.isfinite(trainer.history[-1]["d_loss"])
    assert gan.energy(data).shape == (32,)
    assert torch.allclose(gan.logits(data), -gan.energy(data))
    assert gan.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 2)


def test_generator_step_leaves_no_gradient_on_the_discriminator():
    gan = _toy_gan()
    opts = gan.configure_optimizers()

    def optimize(loss, index=0):
        loss.backward()
        if index == 0:  # after the generator's backward the discriminator must be untouched
            assert all(p.grad is None for p in gan.discriminator.parameters())
        opts[index].step()
        for o in opts:
            o.zero_grad(set_to_none=True)

    gan.training_step(torch.randn(8, 2), optimize)


def test_bad_input():
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    with pytest.raises(ValueError, match="latent_dim"):
        GAN(G, D, latent_dim=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        GAN(G, D, latent_dim=2, loss="lsgan")
    with pytest.raises(ValueError, match="n_critic"):
        GAN(G, D, latent_dim=2, n_critic=0)
    with pytest.raises(ValueError, match="\\(B,\\) or \\(B, 1\\) logits"):
        GAN(G, nn.Linear(2, 3), latent_dim=2).energy(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="reconstruct its input"):
        GAN(G, D, latent_dim=2, loss="ebgan").energy(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="real and fake must have the same shape"):
        L.gradient_penalty(lambda y: y.sum(1), torch.zeros(3, 2), torch.zeros(4, 2))
