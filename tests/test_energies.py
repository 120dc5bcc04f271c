import math

import pytest
import torch
from torch import nn

from ebm import Energy
from ebm.energies import (
    BananaEnergy,
    CircleEnergy,
    ClassEnergy,
    GaussianEnergy,
    MLPEnergy,
    SiameseEnergy,
    mlp,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


# ---- mlp and MLPEnergy -------------------------------------------------------------------------


def test_mlp_layers_and_errors():
    net = mlp([3, 8, 5, 2], nn.Tanh)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert net(torch.zeros(4, 3)).shape == (4, 2)
    with pytest.raises(ValueError, match="sizes"):
        mlp([3])
    with pytest.raises(ValueError, match="sizes"):
        mlp([3, 0, 1])


def test_mlp_energy_unconditional_and_conditional_shapes():
    energy = MLPEnergy(dim=2, hidden=(16,))
    assert isinstance(energy, Energy)
    assert energy(randn(7, 2, dtype=torch.float32)).shape == (7,)
    cond = MLPEnergy(dim=2, hidden=(16, 16), cond_dim=3)
    y, x = randn(5, 2, seed=1, dtype=torch.float32), randn(5, 3, seed=2, dtype=torch.float32)
    e = cond(y, x)
    assert e.shape == (5,)
    # the energy depends on x: the same y scored against another x differs
    assert not torch.allclose(e, cond(y, x.flip(0)))
    # it scores the concatenation [x, y], as documented
    torch.testing.assert_close(e, cond.net(torch.cat([x, y], 1)).squeeze(-1))


def test_mlp_energy_bad_input():
    energy = MLPEnergy(dim=2, hidden=(4,))
    cond = MLPEnergy(dim=2, hidden=(4,), cond_dim=3)
    with pytest.raises(ValueError, match=r"y must have shape \(B, 2\), got \(4, 3\)"):
        energy(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="y must have 2 dimension"):
        energy(torch.zeros(4))
    with pytest.raises(ValueError, match="unconditional"):
        energy(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(4, 3\), got None"):
        cond(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(4, 3\), got \(5, 3\)"):
        cond(torch.zeros(4, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="dim"):
        MLPEnergy(dim=0)
    with pytest.raises(ValueError, match="cond_dim"):
        MLPEnergy(dim=2, cond_dim=-1)
    with pytest.raises(ValueError, match="dim must be an int, got 2.5"):
        MLPEnergy(dim=2.5)
    # errors name the user's argument, not mlp's internal "sizes"
    for hidden, shown in (((0,), "0"), ((4, -1), "-1"), ((2.5,), "2.5"), ("64", "'64'")):
        with pytest.raises(ValueError, match=f"hidden must .*{shown}") as info:
            MLPEnergy(dim=2, hidden=hidden)
        assert "sizes" not in str(info.value)
    with pytest.raises(ValueError, match="cond_dim must be an int"):
        MLPEnergy(dim=2, cond_dim=1.0)


def test_mlp_energy_promotes_and_casts_its_inputs():
    energy = MLPEnergy(dim=2, hidden=(4,), cond_dim=1)
    y, x = torch.tensor([[1, 2], [0, -1]]), torch.tensor([[3], [1]])
    expected = energy(y.float(), x.float())
    # integer data are promoted (never truncated), arrays and lists accepted
    torch.testing.assert_close(energy(y, x), expected)
    torch.testing.assert_close(energy(y.numpy(), [[3], [1]]), expected)
    # float64 data into a float32 model is computed in float32
    out = energy(y.double(), x.double())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


# ---- ClassEnergy --------------------------------------------------------------------------------


def _linear_backbone() -> nn.Linear:
    # energies of 3 labels for 2-D inputs: E_k(x) = −w_k·x, w = e1, e2, −e1
    layer = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(-torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    return layer


def test_class_energy_picks_labels_and_infers_by_argmin():
    energy = ClassEnergy(_linear_backbone())
    x = torch.tensor([[2.0, 0.5], [0.1, 3.0], [-4.0, 1.0]])
    E = energy.energies(x)
    assert E.shape == (3, 3)
    assert E[0].tolist() == [-2.0, -0.5, 2.0]
    assert energy.predict(x).tolist() == [0, 1, 2]
    y = torch.tensor([1, 1, 0])
    assert energy(y, x).tolist() == [-0.5, -3.0, 4.0]
    assert energy(y.int(), x).tolist() == [-0.5, -3.0, 4.0]


def test_class_energy_bad_input():
    energy = ClassEnergy(_linear_backbone())
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="needs the input x"):
        energy(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer labels of shape \(4,\), got torch.float32"):
        energy(torch.zeros(4), x)
    with pytest.raises(ValueError, match=r"got torch.int64 \(3,\)"):
        energy(torch.zeros(3, dtype=torch.long), x)
    with pytest.raises(ValueError, match=r"K >= 2, got \(4, 1\)"):
        ClassEnergy(nn.Linear(2, 1)).energies(x)
    with pytest.raises(ValueError, match="backbone must be an nn.Module"):
        ClassEnergy(lambda x: x)


def test_class_energy_predict_refuses_nan_rows():
    energy = ClassEnergy(_linear_backbone())
    # a NaN row used to get label 0, a believable wrong answer
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="x contains NaN or inf"):
            energy.predict(torch.tensor([[2.0, 0.5], [bad, 0.0]]))

    # a finite x whose energies are NaN, or all +inf, has no answer either
    class Log(nn.Module):
        def forward(self, x):
            return torch.log(x)

    class InverseSquare(nn.Module):
        def forward(self, x):
            return x.square().reciprocal()

    with pytest.raises(ValueError, match=r"x rows \[1\] are NaN or all \+inf"):
        ClassEnergy(Log()).predict(torch.tensor([[1.0, 2.0], [-1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"x rows \[0\] are NaN or all \+inf"):
        ClassEnergy(InverseSquare()).predict(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
    assert ClassEnergy(InverseSquare()).predict(torch.tensor([[0.0, 2.0]])).tolist() == [1]
    # array-likes and integer inputs are accepted and give the float answer
    assert energy.predict([[2, 0], [0, 3], [-4, 1]]).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"x must hold at least one sample: got 0 sample"):
        energy.predict(torch.zeros(0, 2))  # refused, as scikit-learn does


# ---- SiameseEnergy ------------------------------------------------------------------------------


def _siamese() -> SiameseEnergy:
    return SiameseEnergy(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))).double()


def test_siamese_is_the_embedding_distance_and_symmetric():
    energy = _siamese()
    a, b = randn(6, 4, seed=3), randn(6, 4, seed=4)
    e = energy(a, b)
    assert e.shape == (6,)
    torch.testing.assert_close(e, torch.cdist(energy.embed(a), energy.embed(b)).diagonal())
    torch.testing.assert_close(e, energy(b, a), rtol=0, atol=0)


def test_siamese_zero_on_identical_inputs_with_finite_gradient():
    energy = _siamese()
    a = randn(5, 4, seed=5)
    e = energy(a, a.clone())
    assert torch.equal(e, torch.zeros(5, dtype=F64))
    e.sum().backward()
    grads = [p.grad for p in energy.parameters()]
    assert all(torch.isfinite(g).all() for g in grads)
    # the norm's subgradient at 0 is 0: nothing to learn from identical pairs
    assert all((g == 0).all() for g in grads)


def test_siamese_gradcheck_away_from_zero():
    energy = _siamese()
    a, b = randn(3, 4, seed=6).requires_grad_(True), randn(3, 4, seed=7)
    assert torch.autograd.gradcheck(lambda u: energy(u, b), (a,))


def test_siamese_bad_input():
    energy = _siamese()
    with pytest.raises(ValueError, match="needs a pair"):
        energy(torch.zeros(2, 4, dtype=F64))
    with pytest.raises(ValueError, match=r"x \(3, 4\) and y \(2, 4\)"):
        energy(torch.zeros(2, 4, dtype=F64), torch.zeros(3, 4, dtype=F64))


# ---- analytic energies --------------------------------------------------------------------------


def test_circle_is_zero_exactly_on_the_circle():
    energy = CircleEnergy(radius=5.0)
    on = torch.tensor([[5.0, 0.0], [0.0, -5.0], [3.0, 4.0], [-4.0, 3.0]])
    assert torch.equal(energy(on), torch.zeros(4))
    theta = torch.rand(100, generator=gen(8), dtype=F64) * 2 * math.pi
    ring = 5.0 * torch.stack([theta.cos(), theta.sin()], 1)
    assert energy(ring).abs().max() < 1e-24
    assert energy(torch.zeros(1, 2)).item() == 625.0  # (0 − r²)² = r⁴
    assert (energy(ring * 1.01) > 0).all() and (energy(ring * 0.99) > 0).all()


def test_gaussian_energy_is_the_negative_log_density_up_to_a_constant():
    mean = torch.tensor([1.0, -2.0], dtype=F64)
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=F64)
    energy = GaussianEnergy(mean, cov)
    y = randn(50, 2, seed=9)
    log_prob = torch.distributions.MultivariateNormal(mean, cov).log_prob(y)
    log_z = 0.5 * torch.logdet(2 * math.pi * cov)
    torch.testing.assert_close(energy(y), -log_prob - log_z)
    assert energy(mean[None]).item() == 0.0


def test_banana_energy_closed_form():
    a, b = 1.5, 0.7
    energy = BananaEnergy(a=a, b=b)
    y = randn(40, 2, seed=10)
    y1, y2 = y[:, 0], y[:, 1]
    normal = torch.distributions.Normal
    log_prob = normal(0.0, a).log_prob(y1) + normal(b * (y1**2 - a**2), 1.0).log_prob(y2)
    torch.testing.assert_close(energy(y), -log_prob - math.log(2 * math.pi * a))
    # the ridge y2 = b(y1² − a²) at y1 = 0 is the global minimum
    assert BananaEnergy(a=2.0, b=0.5)(torch.tensor([[0.0, -2.0]])).item() == 0.0


def test_score_matches_analytic_gradients():
    y = randn(30, 2, seed=11)
    circle = CircleEnergy(radius=1.5)
    r2 = y.square().sum(1, keepdim=True)
    torch.testing.assert_close(circle.score(y), -4 * (r2 - 1.5**2) * y)

    mean, cov = (
        torch.tensor([0.5, 1.0], dtype=F64),
        torch.tensor([[1.0, 0.3], [0.3, 2.0]], dtype=F64),
    )
    gauss = GaussianEnergy(mean, cov)
    torch.testing.assert_close(gauss.score(y), -(y - mean) @ torch.linalg.inv(cov))

    a, b = 1.2, 0.5
    banana = BananaEnergy(a, b)
    y1, y2 = y[:, 0], y[:, 1]
    r = y2 - b * (y1**2 - a**2)
    grad = torch.stack([y1 / a**2 - 2 * b * y1 * r, r], 1)
    torch.testing.assert_close(banana.score(y), -grad)


def test_score_works_under_no_grad_and_can_keep_the_graph():
    energy = MLPEnergy(dim=2, hidden=(8,)).double()
    y = randn(4, 2, seed=12)
    with torch.no_grad():
        s = energy.score(y)
    assert s.shape == (4, 2) and not s.requires_grad
    s = energy.score(y, create_graph=True)
    s.square().sum().backward()  # a score-matching style loss reaches the parameters
    first, *_, last = energy.net
    assert torch.isfinite(first.weight.grad).all() and first.weight.grad.abs().sum() > 0
    assert last.bias.grad is None  # a constant shift of the energy does not change the score
    # integer y is promoted, not refused: the score of the same points as floats
    torch.testing.assert_close(
        energy.score(torch.tensor([[1, 2]])), energy.score(torch.tensor([[1.0, 2.0]], dtype=F64))
    )


def test_analytic_energies_bad_input():
    with pytest.raises(ValueError, match="radius"):
        CircleEnergy(radius=0.0)
    with pytest.raises(ValueError, match=r"y must have shape \(B, 2\), got \(3, 3\)"):
        CircleEnergy()(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"y must have shape \(B, 2\)"):
        BananaEnergy()(torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"cov must have shape \(2, 2\).*\(3, 3\)"):
        GaussianEnergy(torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianEnergy(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        GaussianEnergy(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="mean must have 1 dimension"):
        GaussianEnergy(torch.zeros(1, 2), torch.eye(2))
    with pytest.raises(ValueError, match=r"y must have shape \(B, 2\), got \(4, 3\)"):
        GaussianEnergy(torch.zeros(2), torch.eye(2))(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="a must be"):
        BananaEnergy(a=-1.0)
    for b in (float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="b must be a finite real number"):
            BananaEnergy(b=b)
    with pytest.raises(ValueError, match=r"mean contains NaN or inf"):
        GaussianEnergy(torch.tensor([0.0, float("nan")]), torch.eye(2))
    with pytest.raises(ValueError, match=r"cov contains NaN or inf"):
        GaussianEnergy(torch.zeros(2), torch.tensor([[1.0, float("inf")], [0.0, 1.0]]))
    # array-likes and integers are accepted: the standard normal's energy ½‖y‖²
    g = GaussianEnergy([0, 0], [[1, 0], [0, 1]])
    torch.testing.assert_close(g([[3, 4]]), torch.tensor([12.5]))
    torch.testing.assert_close(
        CircleEnergy(radius=1.0)(torch.tensor([[1, 1]])), torch.tensor([1.0])
    )
