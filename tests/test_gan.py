import math

import pytest
import torch
from torch import nn

from ebm.models import GAN, BernoulliGenerator
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
    with pytest.raises(ValueError, match="pack must be"):
        GAN(G, D, latent_dim=2, pack=0)
    with pytest.raises(ValueError, match="r1_weight must be"):
        GAN(G, D, latent_dim=2, r1_weight=-1.0)
    with pytest.raises(ValueError, match="r1_weight applies"):
        GAN(G, D, latent_dim=2, loss="hinge", r1_weight=1.0)
    with pytest.raises(ValueError, match="features must be"):
        BernoulliGenerator(0)
    with pytest.raises(ValueError, match="p must be a finite real number in"):
        BernoulliGenerator(1, p=1.0)
    with pytest.raises(ValueError, match="z must be"):
        BernoulliGenerator(2)(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="real and fake must have the same shape"):
        L.gradient_penalty(lambda y: y.sum(1), torch.zeros(3, 2), torch.zeros(4, 2))


def test_r1_penalty_closed_form_on_a_quadratic_critic():
    # d(x) = -½‖A x‖² has ∇d = -AᵀA x, so R1 = mean ‖AᵀA x‖², sample by sample
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    r1 = L.r1_penalty(lambda y: -0.5 * (y @ A.T).pow(2).sum(1), x)
    expected = (x @ (A.T @ A).T).pow(2).sum(1).mean()
    assert torch.allclose(r1, expected)
    # zero-centred: a constant critic has no penalty, a linear one pays ‖w‖² whatever the data
    w = torch.tensor([3.0, -4.0, 0.0], dtype=torch.float64)
    assert L.r1_penalty(lambda y: y @ w, x).item() == pytest.approx(25.0)


def test_r1_weight_adds_half_gamma_times_the_penalty():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    plain, penalised = _toy_gan(), _toy_gan()
    penalised.load_state_dict(plain.state_dict())
    penalised.r1_weight = 4.0
    terms = penalised.discriminator_loss(real, fake)
    expected_r1 = L.r1_penalty(penalised.logits, real)
    assert torch.allclose(terms["r1"], expected_r1)
    base = plain.discriminator_loss(real, fake)["loss"]
    assert torch.allclose(terms["loss"], base + 2.0 * expected_r1)


def test_packing_concatenates_consecutive_samples():
    w = torch.arange(1.0, 7.0)  # a linear discriminator on packs of 3 two-dimensional samples
    D = nn.Linear(6, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(w[None])
    gan = GAN(nn.Linear(2, 2), D, latent_dim=2, pack=3)
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    expected = torch.stack([y[:3].flatten() @ w, y[3:].flatten() @ w])
    assert torch.allclose(gan.logits(y), expected)
    with pytest.raises(ValueError, match="multiple of 3"):
        gan.logits(y[:4])


def test_packed_gan_trains_through_the_trainer_with_penalties():
    for loss, kw in (("nonsaturating", {"r1_weight": 1.0}), ("wgan-gp", {})):
        G = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        D = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        gan = GAN(G, D, latent_dim=2, loss=loss, pack=2, **kw)
        data = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
        trainer = Trainer(max_epochs=1, batch_size=16, device="cpu", seed=0, progress=False)
        trainer.fit(gan, data)
        assert math.isfinite(trainer.history[-1]["d_loss"])


def test_bernoulli_generator_draws_exact_binary_values_with_straight_through_gradient():
    gen = BernoulliGenerator(1, p=0.3)
    z = torch.randn(40000, 1, generator=torch.Generator().manual_seed(0))
    out = gen(z)
    assert set(out.detach().unique().tolist()) == {0.0, 1.0}
    # the frequency of ones is p: binomial standard error sqrt(0.21 / 40000) ≈ 0.0023
    assert abs(out.mean().item() - 0.3) < 0.01
    # straight through: ∂ out / ∂ p = 1 for every sample, so ∂ Σ out / ∂ logit = B · p (1 − p)
    out.sum().backward()
    assert gen.logit.grad.item() == pytest.approx(40000 * 0.3 * 0.7, rel=1e-5)


def test_bernoulli_generator_propagates_nan_and_promotes_array_likes():
    gen = BernoulliGenerator(2, p=0.4)
    z = torch.tensor([[0.1, -0.3], [math.nan, 2.0], [-math.inf, math.inf]])
    out = gen(z).detach()
    # Φ(0.1) = 0.540 > 0.4 -> 0; Φ(-0.3) = 0.382 < 0.4 -> 1; Φ(2) = 0.977 -> 0; Φ(±inf) = 1, 0
    assert out[0].tolist() == [0.0, 1.0]
    assert math.isnan(out[1, 0]) and out[1, 1] == 0.0  # the NaN latent used to give a 0
    assert out[2].tolist() == [1.0, 0.0]
    # numpy, lists, ints and bools give the float tensor's draws, in the parameters' dtype
    ints = torch.tensor([[0, -1], [1, 0]])
    ref = gen(ints.float())
    for alt in (ints, ints.numpy(), ints.tolist(), ints.double()):
        got = gen(alt)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref)
    torch.testing.assert_close(gen(ints != 0), gen((ints != 0).float()))


def test_bernoulli_coin_gan_reaches_the_equilibrium_where_d_is_one_half():
    # on binary data an affine logit is the most general discriminator; R1 = a² damps the
    # oscillation of the (Dirac-GAN-like) game so p converges to 0.3 and D to ½
    data = (torch.rand(1024, 1, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    torch.manual_seed(0)
    gan = GAN(
        BernoulliGenerator(1),
        nn.Linear(1, 1),
        latent_dim=1,
        lr=1e-2,
        betas=(0.5, 0.9),
        r1_weight=1.0,
    )
    Trainer(
        max_steps=1500, max_epochs=None, batch_size=64, device="cpu", seed=0, progress=False
    ).fit(gan, data)
    assert abs(gan.generator.probability.item() - data.mean().item()) < 0.03
    d = torch.sigmoid(gan.logits(torch.tensor([[0.0], [1.0]])))
    assert torch.allclose(d, torch.full((2,), 0.5), atol=0.05)


def test_lr_decay_steps_anneal_both_learning_rates_linearly_to_zero():
    gan = GAN(nn.Linear(2, 2), nn.Linear(2, 1), latent_dim=2, lr=1e-3, lr_d=4e-3, lr_decay_steps=8)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    trainer = Trainer(max_steps=4, max_epochs=None, batch_size=8, device="cpu", seed=0)
    trainer.fit(gan, data)
    lrs = [group["lr"] for opt in trainer._optimizers for group in opt.param_groups]
    assert lrs == pytest.approx([0.5e-3, 2e-3])  # 4 of 8 steps: half way down
    assert gan._decay(8) == 0.0 and gan._decay(20) == 0.0
    # with n_critic > 1 the generator's rate follows the same clock (and nothing warns)
    gan = _toy_gan("wgan-gp", n_critic=2)
    gan.lr_decay_steps = 8
    trainer = Trainer(max_steps=6, max_epochs=None, batch_size=8, device="cpu", seed=0)
    trainer.fit(gan, data)
    assert [opt.param_groups[0]["lr"] for opt in trainer._optimizers] == pytest.approx(
        [0.25 * gan.lr, 0.25 * gan.lr_d]
    )
    with pytest.raises(ValueError, match="lr_decay_steps"):
        GAN(nn.Linear(2, 2), nn.Linear(2, 1), latent_dim=2, lr_decay_steps=0)


def test_decay_steps_is_a_deprecated_name_for_lr_decay_steps():
    with pytest.warns(DeprecationWarning, match="'decay_steps'.*'lr_decay_steps'"):
        gan = GAN(nn.Linear(2, 2), nn.Linear(2, 1), latent_dim=2, decay_steps=8)
    assert gan.lr_decay_steps == 8 and gan._decay(4) == 0.5
    with pytest.raises(TypeError, match="decay_steps"):
        GAN(nn.Linear(2, 2), nn.Linear(2, 1), latent_dim=2, decay_steps=8, lr_decay_steps=8)


@pytest.mark.slow
@pytest.mark.parametrize("dataset, n_modes, min_quality", [("ring", 8, 0.90), ("grid", 25, 0.80)])
def test_r1_gan_covers_every_mode_of_the_ring_and_the_grid(dataset, n_modes, min_quality):
    # the targets (VEEGAN's benchmark): non-saturating + R1, 20 000 annealed steps
    from ebm.data import grid_of_gaussians, ring_of_gaussians
    from ebm.data.toy2d import grid_centers, ring_centers
    from ebm.energies import mlp
    from ebm.metrics import mode_coverage

    std, steps = 0.02, 20000
    make, centers = {
        "ring": (ring_of_gaussians, ring_centers()),
        "grid": (grid_of_gaussians, grid_centers()),
    }[dataset]
    data = make(50000, noise=std, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    gan = GAN(
        mlp([8, 128, 128, 128, 2], nn.ReLU),
        mlp([2, 128, 128, 128, 1], nn.LeakyReLU),
        latent_dim=8,
        lr=1e-3,
        r1_weight=1.0,
        lr_decay_steps=steps,
    )
    Trainer(max_steps=steps, max_epochs=None, batch_size=256, seed=0, progress=False).fit(gan, data)
    samples = gan.sample(2500, generator=torch.Generator().manual_seed(0))
    covered, quality = mode_coverage(samples, centers, std)
    assert covered == n_modes and quality >= min_quality


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"betas": (1.5, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.5, float("nan"))}, r"betas\[1\]"),
        ({"betas": (0.5,)}, "betas"),
        ({"r1_weight": float("inf")}, "r1_weight"),
        ({"r1_weight": "1"}, "r1_weight"),
        ({"lr": "1e-3"}, "lr"),
        ({"gp_weight": float("nan")}, "gp_weight"),
        ({"margin": float("inf")}, "margin"),
        ({"n_critic": 2.5}, "n_critic"),
        ({"lr_decay_steps": 2.5}, "lr_decay_steps"),
        ({"latent_dim": "2"}, "latent_dim"),
        ({"generator": None}, "generator"),
    ],
)
def test_hyper_parameters_are_rejected_at_construction(kwargs, name):
    args = {"generator": nn.Linear(2, 2), "discriminator": nn.Linear(2, 1), "latent_dim": 2}
    with pytest.raises(ValueError, match=name):
        GAN(**{**args, **kwargs})


def test_data_is_cast_to_the_discriminator_dtype():
    torch.manual_seed(0)  # the layers' initial weights; tests own the global RNG
    gan = GAN(nn.Linear(2, 2), nn.Linear(2, 1), latent_dim=2)
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    reference = gan.energy(y)
    assert gan.energy(y.double()).dtype == torch.float32
    torch.testing.assert_close(gan.energy(y.double()), reference)
    torch.testing.assert_close(gan.logits(y.tolist()), -reference)
    terms = gan.discriminator_loss(y.double(), y)
    torch.testing.assert_close(terms["loss"], L.bce_discriminator_loss(-reference, -reference))
    for n in (0, 2.5, "3"):
        with pytest.raises(ValueError, match="n must"):
            gan.sample(n)


def test_loss_functions_check_their_hyper_parameters():
    zeros = torch.zeros(3)
    for margin in (float("nan"), float("inf"), -1.0, "1"):
        with pytest.raises(ValueError, match="margin"):
            L.ebgan_discriminator_loss(zeros, zeros, margin)
    with pytest.raises(ValueError, match="eps"):
        L.gradient_penalty(lambda y: y.sum(1), torch.zeros(3, 2), torch.zeros(3, 2), eps=zeros[:2])
    with pytest.raises(ValueError, match="p must"):
        BernoulliGenerator(1, p=float("nan"))


def test_wgan_gp_interpolation_weights_come_from_the_generator():
    gan = _toy_gan("wgan-gp")
    real = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    fake = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    a = gan.discriminator_loss(real, fake, generator=torch.Generator().manual_seed(2))
    b = gan.discriminator_loss(real, fake, generator=torch.Generator().manual_seed(2))
    c = gan.discriminator_loss(real, fake, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a["gp"], b["gp"]) and not torch.equal(a["gp"], c["gp"])
