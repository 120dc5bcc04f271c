"""ebm.models.JEM: the two readings of a classifier's logits, the generative term's gradient,
sampling, training through the Trainer, and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ebm.models import EBM, JEM
from ebm.sampling import ReplayBuffer
from ebm.train import Trainer


def _linear(d: int = 3, k: int = 4, seed: int = 0) -> nn.Linear:
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(d, k)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(k, d, generator=g))
        layer.bias.copy_(torch.randn(k, generator=g))
    return layer


def _jem(**kw) -> JEM:
    kw.setdefault("buffer_size", 16)
    kw.setdefault("n_steps", 3)
    return JEM(_linear(), (3,), 4, seed=0, **kw)


# ---- closed forms ---------------------------------------------------------------------------


def test_energy_is_minus_logsumexp_of_the_logits_closed_form():
    model = _jem()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    W, b = model.classifier.weight.double(), model.classifier.bias.double()
    logits = x @ W.T + b  # (7, 4) by hand
    expected = -torch.log(torch.exp(logits).sum(1))
    torch.testing.assert_close(model.energy(x).double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.logits(x).double(), logits, rtol=1e-5, atol=1e-5)


def test_predict_proba_is_softmax_and_bayes_rule_of_the_joint_energy():
    model = _jem()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    probs = model.predict_proba(x)
    logits = model.logits(x)
    torch.testing.assert_close(probs, torch.softmax(logits, 1))
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    # p(y|x) = exp(−E(x, y)) / exp(−E(x)) with E(x, y) = −f(x)[y]
    torch.testing.assert_close(probs, torch.exp(logits + model.energy(x)[:, None]))


def test_energy_is_invariant_to_a_shift_of_the_logits_only_through_logsumexp():
    """Adding c to every logit leaves p(y|x) unchanged and lowers E(x) by exactly c: the energy
    carries what softmax throws away."""
    model = _jem()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    e, p = model.energy(x), model.predict_proba(x)
    with torch.no_grad():
        model.classifier.bias += 2.5
    torch.testing.assert_close(model.energy(x), e - 2.5)
    torch.testing.assert_close(model.predict_proba(x), p)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_training_loss_gradient_matches_the_closed_form(alpha):
    """For f(x) = Wx + b: ∂E(x)/∂W = −softmax(f(x)) xᵀ, ∂CE/∂W = (softmax − onehot) xᵀ, so the
    loss CE + [mean E(x) − mean E(x̃) + α(mean E(x)² + mean E(x̃)²)] has a closed-form gradient.
    With buffer_size = B every slot is advanced, so the buffer holds exactly the samples x̃."""
    B = 8
    model = _jem(buffer_size=B, alpha=alpha, generative_weight=1.0)
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(B, 3, generator=g), torch.randint(0, 4, (B,), generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = model.training_step((x, y))
    out["loss"].backward()
    samples = model.buffer.samples.clone()
    W, b = model.classifier.weight.detach(), model.classifier.bias.detach()

    def pieces(z):
        logits = z @ W.T + b
        p = torch.softmax(logits, 1)
        return p, -torch.logsumexp(logits, 1)

    p_d, e_d = pieces(x)
    p_s, e_s = pieces(samples)
    onehot = F.one_hot(y, 4).float()
    grad_ce = (p_d - onehot).T @ x / B
    # dE/dW for each row: −p xᵀ; weights of each row's contribution in the loss
    w_d = (1 + 2 * alpha * e_d) / B  # d/dE_d of mean E_d + α mean E_d²
    w_s = (-1 + 2 * alpha * e_s) / B  # d/dE_s of −mean E_s + α mean E_s²
    grad_gen = -(p_d * w_d[:, None]).T @ x - (p_s * w_s[:, None]).T @ samples
    grad_b = (p_d - onehot).mean(0) - (p_d * w_d[:, None]).sum(0) - (p_s * w_s[:, None]).sum(0)
    torch.testing.assert_close(model.classifier.weight.grad, grad_ce + grad_gen)
    torch.testing.assert_close(model.classifier.bias.grad, grad_b)
    # the logged terms are the loss's pieces
    torch.testing.assert_close(out["ce"], F.cross_entropy(x @ W.T + b, y))
    torch.testing.assert_close(out["e_data"], e_d.mean())
    torch.testing.assert_close(out["e_model"], e_s.mean())
    expected = F.cross_entropy(x @ W.T + b, y) + e_d.mean() - e_s.mean()
    expected = expected + alpha * (e_d.square().mean() + e_s.square().mean())
    torch.testing.assert_close(out["loss"].detach(), expected)


def test_generative_weight_zero_is_a_plain_classifier_and_leaves_the_buffer_alone():
    model = _jem(generative_weight=0.0)
    before = model.buffer.samples.clone()
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    out = model.training_step((x, y))
    torch.testing.assert_close(out["loss"], F.cross_entropy(model.classifier(x), y))
    assert torch.equal(model.buffer.samples, before)
    assert "e_model" not in out


def test_data_noise_perturbs_the_training_inputs_only():
    """With data_noise = s, the training step sees x + s·z, z the global RNG's first draw (before
    the chains'); validation and evaluation see x itself."""
    model = _jem(data_noise=0.5, generative_weight=0.0)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        out = model.training_step((x, y))
        torch.manual_seed(7)
        noisy = x + 0.5 * torch.randn_like(x)
    with torch.no_grad():
        torch.testing.assert_close(out["loss"], F.cross_entropy(model.classifier(noisy), y))
        assert not torch.allclose(out["loss"], F.cross_entropy(model.classifier(x), y))
        clean = F.cross_entropy(model.classifier(x), y)
        torch.testing.assert_close(model.validation_step((x, y))["loss"], clean)
    assert model.data_noise == 0.5 and _jem().data_noise == 0.0


def test_training_chains_run_on_the_buffer_through_replay_buffer_advance():
    """The chains are the EBM's: ReplayBuffer.advance with Langevin at step_size, noise_scale."""
    model = _jem(buffer_size=4, n_steps=5, reinit_prob=0.0)
    start = model.buffer.samples.clone()
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model.training_step((x, y))
        # the same draws by hand: slots, re-draw test, then the Langevin noise
        torch.manual_seed(0)
        idx = torch.randperm(4)[:4]
        torch.rand(4, 3)
        torch.rand(4)
        from ebm.sampling import langevin

        energy = lambda z: -torch.logsumexp(model.classifier(z), 1)  # noqa: E731
        ends = langevin(energy, start[idx], 5, 1.0, noise_scale=0.01)
    torch.testing.assert_close(model.buffer.samples[idx], ends)


# ---- sampling -------------------------------------------------------------------------------


def test_sample_shapes_and_determinism_with_a_generator():
    model = _jem()
    for kwargs in ({}, {"y": 2}, {"y": torch.tensor([0, 1, 2, 3, 0])}, {"from_buffer": True}):
        a = model.sample(5, generator=torch.Generator().manual_seed(7), **kwargs)
        b = model.sample(5, generator=torch.Generator().manual_seed(7), **kwargs)
        assert a.shape == (5, 3)
        assert torch.equal(a, b)
    c = model.sample(5, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(c, model.sample(5, generator=torch.Generator().manual_seed(7)))


def test_sample_with_zero_steps_is_the_start_noise():
    model = _jem(init_scale=2.0)
    x = model.sample(300, n_steps=0, generator=torch.Generator().manual_seed(0))
    assert x.abs().max() <= 2.0 and x.abs().max() > 1.9  # uniform on [−2, 2]


class Quadratic(nn.Module):
    """Logits f(x)[k] = −½‖x − μ_k‖²: exp(−E(x)) is an equal mixture of N(μ_k, I)·const."""

    def __init__(self, centres):
        super().__init__()
        self.mu = nn.Parameter(torch.as_tensor(centres, dtype=torch.float32))

    def forward(self, x):
        return -0.5 * (x[:, None, :] - self.mu).square().sum(-1)


def test_class_conditional_sampling_descends_the_joint_energy():
    """E(x, y) = −f(x)[y]: SGLD with tiny noise from the same start lowers −f(x)[y] for the
    class asked for; with f(x)[y] = −½‖x − μ_y‖², p(x|y) = N(μ_y, I), and with the exact noise
    √(2·step) the conditional samples have that mean and are classified as y."""
    centres = [[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]]
    cold = JEM(_linear(2, 4), (2,), 4, n_steps=1, step_size=0.05, buffer_size=16, seed=0)
    start = cold.sample(64, n_steps=0, generator=torch.Generator().manual_seed(0))
    step = 0.05
    exact = JEM(Quadratic(centres), (2,), 4, step_size=step, noise_scale=(2 * step) ** 0.5)
    for k in range(4):
        x = cold.sample(64, y=k, n_steps=20, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert (-cold.classifier(x)[:, k] < -cold.classifier(start)[:, k]).all()
        x = exact.sample(2000, y=k, n_steps=300, generator=torch.Generator().manual_seed(k))
        assert (x.mean(0) - torch.tensor(centres[k])).abs().max() < 0.1
        assert (x.var(0) - 1.0).abs().max() < 0.15
        assert (exact.predict_proba(x).argmax(1) == k).float().mean() > 0.9


def test_unconditional_sampling_with_exact_noise_matches_a_gaussian_energy():
    """With two equal centres exp(−E(x)) ∝ N(μ, I), and SGLD with noise √(2·step) samples it."""
    step = 0.05
    model = JEM(
        Quadratic([[1.0, -1.0], [1.0, -1.0]]),
        (2,),
        2,
        step_size=step,
        noise_scale=(2 * step) ** 0.5,
        seed=0,
    )
    x = model.sample(4000, n_steps=300, generator=torch.Generator().manual_seed(0))
    assert (x.mean(0) - torch.tensor([1.0, -1.0])).abs().max() < 0.1
    assert (x.var(0) - 1.0).abs().max() < 0.15


def test_chains_run_with_dropout_off_and_the_mode_is_restored():
    net = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.5), nn.Linear(16, 4))
    model = JEM(net, (3,), 4, n_steps=4, buffer_size=8, seed=0)
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    b = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)  # deterministic energy: dropout was off
    assert model.training and net.training


def test_float64_inputs_are_computed_in_the_model_dtype():
    model = _jem()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert model.energy(x).dtype == torch.float32
    assert model.predict_proba(x.numpy()).dtype == torch.float32
    assert model.logits([[1, 2, 3]]).shape == (1, 4)


# ---- training through the Trainer -----------------------------------------------------------


def test_jem_trains_through_the_trainer_and_separates_data_from_noise():
    """Two Gaussian blobs in 2-D: JEM classifies them and puts lower energy on them than on
    uniform noise far away."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x = torch.randn(256, 2, generator=g) * 0.3 + torch.tensor([[-1.0, 0.0], [1.0, 0.0]])[y]
    net = nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 2))
    with torch.no_grad():  # a fixed init, without touching the global RNG
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    model = JEM(net, (2,), 2, n_steps=10, step_size=0.1, buffer_size=128, lr=1e-2, seed=0)
    trainer = Trainer(max_epochs=15, batch_size=64, seed=0, progress=False, device="cpu")
    trainer.fit(model, (x, y), val_data=(x, y))
    assert trainer.history[-1]["val_accuracy"] > 0.95
    far = torch.tensor([[0.0, 3.0], [0.0, -3.0], [3.5, 3.0], [-3.5, -3.0]])
    assert model.energy(x).mean() < model.energy(far).min()


# ---- the shared chain code: EBM is unchanged -----------------------------------------------


def test_ebm_persistent_chains_go_through_replay_buffer_advance(monkeypatch):
    calls = []
    original = ReplayBuffer.advance

    def spy(self, n, kernel, generator=None):
        calls.append(n)
        return original(self, n, kernel, generator)

    monkeypatch.setattr(ReplayBuffer, "advance", spy)
    model = EBM(
        nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1), nn.Flatten(0)),
        (2,),
        n_steps=2,
        buffer_size=4,
        seed=0,
    )
    model.training_step(torch.randn(6, 2), lambda loss: None)
    assert calls == [4]


# ---- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"classifier": "net"}, "classifier"),
        ({"n_classes": 1}, "n_classes"),
        ({"step_size": 0.0}, "step_size"),
        ({"noise_scale": -1.0}, "noise_scale"),
        ({"alpha": float("nan")}, "alpha"),
        ({"data_noise": -0.1}, "data_noise"),
        ({"generative_weight": -1.0}, "generative_weight"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"data_shape": (0,)}, "data_shape"),
        ({"init_noise": "gauss"}, "init_noise"),
    ],
)
def test_bad_hyper_parameters_are_refused_by_name(kwargs, name):
    args = {"classifier": _linear(), "data_shape": (3,), "n_classes": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        JEM(**args)


def test_bad_data_is_refused_by_name():
    model = _jem()
    with pytest.raises(ValueError, match="x"):
        model.energy(torch.randn(4, 5))
    with pytest.raises(ValueError, match="x"):
        model.predict_proba(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="y"):
        model.sample(3, y=torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="y"):
        model.sample(3, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y"):
        model.sample(3, y=torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="n"):
        model.sample(17, from_buffer=True)
    with pytest.raises(ValueError, match="labelled"):
        model.training_step(torch.randn(4, 3))
    wrong = JEM(_linear(3, 5), (3,), 4, buffer_size=4, seed=0)
    with pytest.raises(ValueError, match="n_classes"):
        wrong.logits(torch.randn(2, 3))
