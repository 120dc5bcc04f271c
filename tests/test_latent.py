"""Tests for ebm.latent: z-inference, free energies against closed forms, envelope gradients."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.data import ellipse, horn
from ebm.energies import Energy
from ebm.latent import EllipseEnergy, HornEnergy, LatentEnergy, LatentFreeEnergy


def _angle_error(a, b):
    return torch.remainder(a - b + math.pi, 2 * math.pi) - math.pi


def test_inferred_angle_is_theta_on_the_true_ellipse():
    y, theta = ellipse(24, noise=0.0, generator=torch.Generator().manual_seed(0))
    grid = EllipseEnergy(w=(2.0, 1.5), n_z=48)
    result = grid.free_energy(y)
    assert isinstance(result, LatentFreeEnergy) and result.z.shape == (24, 1)
    # the nearest of 48 grid angles: within half a grid step (plus float slack)
    assert _angle_error(result.z[:, 0], theta).abs().max() <= math.pi / 48 + 1e-5
    for inference in ("lbfgs", "gradient"):
        options = {"n_steps": 300, "lr": 0.05} if inference == "gradient" else {}
        model = EllipseEnergy(w=(2.0, 1.5), n_z=8, inference=inference, inference_options=options)
        result = model.free_energy(y)
        assert _angle_error(result.z[:, 0], theta).abs().max() < 1e-3
        assert result.free_energy.abs().max() < 1e-6


def _circle_model(radius, **kwargs):
    return EllipseEnergy(w=(radius, radius), **kwargs).double()


def _points(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    angles = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    r = 0.2 + 3 * torch.rand(n, generator=g, dtype=torch.float64)
    return r[:, None] * torch.stack([angles.cos(), angles.sin()], 1)


def test_zero_temperature_free_energy_of_a_circle_is_the_squared_distance():
    # E = ‖y − r(cos z, sin z)‖²: min over z gives (‖y‖ − r)²
    y, r = _points(), 1.25  # exact in float32, like the model
    F = _circle_model(r, n_z=6, inference="lbfgs").free_energy(y).free_energy
    torch.testing.assert_close(F, (y.norm(dim=1) - r) ** 2, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("beta", [0.05, 0.5, 2.0])
def test_finite_temperature_free_energy_of_a_circle_is_the_bessel_marginal(beta):
    # mean_z exp(−β E) = exp(−β(‖y‖² + r²)) · I₀(2βr‖y‖) for z ~ U(0, 2π); a uniform grid of
    # 96 angles integrates this periodic analytic function to machine precision
    y, r = _points(seed=1), 1.25
    model = _circle_model(r, n_z=96)
    F = model.free_energy(y, beta=beta, average=True).free_energy
    a = 2 * beta * r * y.norm(dim=1)
    log_i0 = torch.log(torch.special.i0e(a)) + a
    expected = y.pow(2).sum(1) + r**2 - log_i0 / beta
    torch.testing.assert_close(F, expected, atol=1e-6, rtol=1e-6)  # float32 grid angles
    # the library's default sums over the 96 grid angles instead: log(96)/β lower
    F_sum = model.free_energy(y, beta=beta).free_energy
    torch.testing.assert_close(F_sum, expected - math.log(96) / beta, atol=1e-5, rtol=1e-6)
    # a model built with average=True and beta uses the average form in forward (and training)
    averaged = EllipseEnergy(w=(r, r), n_z=96, beta=beta, average=True).double()
    torch.testing.assert_close(averaged(y), F, rtol=0, atol=0)
    torch.testing.assert_close(averaged.free_energy(y, beta=beta, average=False).free_energy, F_sum)


def test_free_energy_limits_in_beta():
    y, _ = ellipse(24, generator=torch.Generator().manual_seed(3))
    model = EllipseEnergy(w=(1.7, 1.2))
    E = model.grid_energies(y)
    torch.testing.assert_close(
        model.free_energy(y, beta=1e-7, average=True).free_energy, E.mean(1), atol=1e-4, rtol=1e-5
    )
    for average in (False, True):
        torch.testing.assert_close(
            model.free_energy(y, beta=1e5, average=average).free_energy,
            E.min(1).values,
            atol=1e-4,
            rtol=0,
        )
    torch.testing.assert_close(model.free_energy(y).free_energy, E.min(1).values)
    torch.testing.assert_close(model(y), E.min(1).values)  # the model's beta: inf by default
    # the default is −(1/β) log Σ_z exp(−βE), as ebm.inference.free_energy and the notes
    expected = -torch.logsumexp(-2.0 * E.double(), 1) / 2.0
    torch.testing.assert_close(model.free_energy(y, beta=2.0).free_energy.double(), expected)


def test_free_energy_infinite_limits():
    # an energy that is +inf off a window of z and −inf at one point
    def energy(y, z, x):
        e = (y[:, 0] - z[:, 0]).square()
        e = torch.where(z[:, 0].abs() > y[:, 1], torch.full_like(e, math.inf), e)
        return torch.where(z[:, 0] == y[:, 2], torch.full_like(e, -math.inf), e)

    model = LatentEnergy(torch.linspace(-1, 1, 5), energy=energy)
    y = torch.tensor(
        [
            [0.0, 0.1, 9.0],  # only z = 0 allowed: F = E(z = 0) = 0
            [0.0, -1.0, 9.0],  # no z allowed: +inf
            [0.0, 2.0, 0.5],  # z = 0.5 has energy −inf: −inf
        ],
        requires_grad=True,
    )
    for beta in (0.5, 4.0, math.inf):
        F = model.free_energy(y, beta=beta).free_energy
        assert F.tolist() == [0.0, math.inf, -math.inf]
    (grad,) = torch.autograd.grad(model.free_energy(y, beta=0.5).free_energy[0], y)
    assert torch.isfinite(grad).all()


def test_inputs_are_promoted_and_cast_to_the_model_dtype():
    model = _circle_model(1.25, n_z=12)  # float64
    y = torch.tensor([[1, 0], [0, 2]])
    expected = model.free_energy(y.double(), beta=1.0).free_energy
    for given in (y, y.float(), y.numpy(), y.tolist()):
        result = model.free_energy(given, beta=1.0)
        assert result.free_energy.dtype == torch.float64
        torch.testing.assert_close(result.free_energy, expected)
    # z_grid accepts array-likes and integers too
    grid = LatentEnergy([0, 1, 2], energy=lambda y, z, x: (y - z).square().sum(1))
    assert grid.z_grid.dtype == torch.get_default_dtype() and grid.z_grid.shape == (3, 1)
    torch.testing.assert_close(grid.free_energy([[1.2]]).z, torch.tensor([[1.0]]))


def test_envelope_gradient_of_f_infinity_matches_finite_differences():
    y = _points(8, seed=4)
    model = EllipseEnergy(w=(1.8, 1.1), n_z=12, inference="lbfgs").double()
    F = model.free_energy(y).free_energy.sum()
    (grad,) = torch.autograd.grad(F, model.w)
    eps, numeric = 1e-6, torch.zeros(2, dtype=torch.float64)
    for i in range(2):
        with torch.no_grad():
            model.w[i] += eps
            up = model.free_energy(y).free_energy.sum()
            model.w[i] -= 2 * eps
            down = model.free_energy(y).free_energy.sum()
            model.w[i] += eps
        numeric[i] = (up - down) / (2 * eps)
    torch.testing.assert_close(grad, numeric, atol=1e-5, rtol=1e-5)
    # and the gradient w.r.t. y is ∂E/∂y at ž: 2(y − G(ž))
    y = y.requires_grad_(True)
    result = model.free_energy(y)
    (gy,) = torch.autograd.grad(result.free_energy.sum(), y)
    torch.testing.assert_close(gy, 2 * (y - model.decode(result.z)).detach())


def test_a_callable_energy_and_conditional_batches():
    # E(y, z, x) = (y − x − z)²: F∞ over z on a grid is the squared distance to the nearest x + z
    grid = torch.linspace(-1, 1, 5)
    model = LatentEnergy(grid, energy=lambda y, z, x: (y - x - z).pow(2).sum(1))
    assert isinstance(model, Energy)
    x = torch.tensor([[0.0], [10.0]])
    y = torch.tensor([[0.4], [10.9]])
    result = model.free_energy(y, x)
    torch.testing.assert_close(result.z, torch.tensor([[0.5], [1.0]]))
    torch.testing.assert_close(result.free_energy, torch.tensor([0.01, 0.01]))
    torch.testing.assert_close(model.training_step([x, y]), torch.tensor(0.01))
    step = EllipseEnergy(w=(2.0, 1.5)).training_step(torch.zeros(3, 2))
    assert step["w1"].item() == 2.0 and step["w2"].item() == 1.5 and step["loss"].requires_grad
    torch.testing.assert_close(model(y, x), result.free_energy)


def test_horn_energy_shapes_and_zero_temperature_step():
    x, y, _ = horn(16, generator=torch.Generator().manual_seed(0))
    model = HornEnergy()
    result = model.free_energy(y, x)
    assert result.free_energy.shape == (16,) and result.z.shape == (16, 1)
    loss = model.training_step([x, y])
    loss.backward()
    assert all(p.grad is not None for p in model.f.parameters())
    assert isinstance(model.configure_optimizers(), torch.optim.Optimizer)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="z_grid"):
        LatentEnergy(torch.zeros(0, 1), energy=lambda y, z, x: y.sum(1))
    with pytest.raises(ValueError, match="z_grid contains NaN"):
        LatentEnergy([0.0, math.nan], energy=lambda y, z, x: y.sum(1))
    with pytest.raises(ValueError, match="z_grid must be a tensor or an array-like"):
        LatentEnergy("0 1", energy=lambda y, z, x: y.sum(1))
    with pytest.raises(ValueError, match="z_grid must have 1 or 2 dimension"):
        LatentEnergy(torch.zeros(2, 2, 2), energy=lambda y, z, x: y.sum(1))
    with pytest.raises(ValueError, match="energy must be callable"):
        LatentEnergy(torch.zeros(3), energy="E")
    # a misspelt solver option used to fail only at the first inference, with a TypeError
    with pytest.raises(ValueError, match=r"inference_options \['step'\] are not options"):
        EllipseEnergy(inference="gradient", inference_options={"step": 3})
    with pytest.raises(TypeError, match="both 'steps'.*'n_steps'"):
        EllipseEnergy(inference="gradient", inference_options={"steps": 3, "n_steps": 3})
    with pytest.raises(ValueError, match=r"inference_options \['lr'\] are not options"):
        EllipseEnergy(inference="grid", inference_options={"lr": 0.1})
    with pytest.raises(ValueError, match="inference_options must be a dict"):
        LatentEnergy(torch.zeros(3), energy=lambda y, z, x: y.sum(1), inference_options=[1])
    for w in ((1.0, math.nan), (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="w "):
            EllipseEnergy(w=w)
    with pytest.raises(ValueError, match="hidden must hold ints >= 1"):
        HornEnergy(hidden=(8, 0))
    with pytest.raises(ValueError, match="beta"):
        EllipseEnergy(beta=math.nan)
    with pytest.raises(ValueError, match="inference"):
        EllipseEnergy(inference="annealing")
    model = EllipseEnergy()
    y = torch.zeros(4, 2)
    for beta in (0.0, -2.0, math.nan, "1"):
        with pytest.raises(ValueError, match="beta"):
            model.free_energy(y, beta=beta)
    with pytest.raises(ValueError, match="average must be None or a bool"):
        model.free_energy(y, beta=1.0, average="yes")
    with pytest.raises(ValueError, match="average must be a bool"):
        EllipseEnergy(average=1)
    with pytest.raises(ValueError, match="y must have 2"):
        model.free_energy(torch.zeros(4))
    with pytest.raises(ValueError, match="y must have shape"):
        model.free_energy(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="same number of samples"):
        HornEnergy().free_energy(y, torch.zeros(3, 1))
    with pytest.raises(ValueError, match="needs the input x"):
        HornEnergy().free_energy(y)
    with pytest.raises(ValueError, match="n_z"):
        EllipseEnergy(n_z=0)
    with pytest.raises(ValueError, match="energy must return"):
        LatentEnergy(torch.zeros(3), energy=lambda y, z, x: y).free_energy(y)


def test_decoder_energies_accept_array_likes_and_promote_integers():
    ellipse_model = EllipseEnergy(w=(2.0, 1.5))
    y, z = torch.tensor([[1, 0], [0, 2]]), torch.tensor([[0.0], [math.pi / 2]])
    # closed form: the decoded points are (2, 0) and (0, 1.5)
    expected = torch.tensor([(1 - 2) ** 2 + 0.0, 0.0 + (2 - 1.5) ** 2])
    torch.testing.assert_close(ellipse_model.energy(y.float(), z), expected)
    for alt_y, alt_z in ((y, z.numpy()), (y.numpy(), z.tolist()), (y.tolist(), z.double())):
        got = ellipse_model.energy(alt_y, alt_z)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(ellipse_model.decode(z.tolist()), ellipse_model.decode(z))
    torch.testing.assert_close(
        ellipse_model.energy(y != 0, z), ellipse_model.energy((y != 0).float(), z)
    )
    horn_model = HornEnergy()
    x = torch.tensor([[1], [0]])
    ref = horn_model.energy(y.float(), z, x.float())
    for alt_y, alt_z, alt_x in (
        (y, z, x),
        (y.numpy(), z.numpy(), x.numpy()),
        (y.tolist(), z.tolist(), x.tolist()),
    ):
        torch.testing.assert_close(horn_model.energy(alt_y, alt_z, alt_x), ref)
    torch.testing.assert_close(horn_model.decode(z.numpy(), x), horn_model.decode(z, x.float()))
    torch.testing.assert_close(
        horn_model.energy(y, z, x != 0), horn_model.energy(y.float(), z, (x != 0).float())
    )


def test_old_solver_option_name_warns_and_is_renamed():
    """inference_options={"steps": k} (0.1's name of gradient_descent's n_steps) still works."""
    with pytest.warns(DeprecationWarning, match="'steps' is deprecated.*use 'n_steps'") as w:
        old = EllipseEnergy(inference="gradient", inference_options={"steps": 7, "lr": 0.1})
    assert w[0].filename == __file__  # points at the user's line, not inside ebm
    assert old.inference_options == {"n_steps": 7, "lr": 0.1}
    new = EllipseEnergy(inference="gradient", inference_options={"n_steps": 7, "lr": 0.1})
    y = torch.tensor([[1.0, 0.5], [-0.3, 0.9]])
    assert torch.equal(old.free_energy(y).free_energy, new.free_energy(y).free_energy)


def _yx():
    g = torch.Generator().manual_seed(4)
    return torch.randn(6, 2, generator=g), torch.rand(6, 1, generator=g)


def test_training_step_takes_numpy_batches_like_tensors():
    """A numpy y used to be refused ("batch must be y, [y] or [x, y], got ndarray")."""
    y, x = _yx()
    ellipse_model, horn_model = EllipseEnergy((2.0, 1.5), n_z=8), HornEnergy(n_z=8)
    expected = ellipse_model.training_step(y)["loss"]
    for batch in (y.numpy(), y.double().numpy(), [y.numpy()], (x, y.numpy())):
        torch.testing.assert_close(
            ellipse_model.training_step(batch)["loss"], expected, rtol=0, atol=0
        )
    expected = horn_model.training_step((x, y))
    torch.testing.assert_close(horn_model.training_step((x.numpy(), y.double().numpy())), expected)


@pytest.mark.parametrize(
    "model,batch,match",
    [
        (EllipseEnergy, lambda y, x: y[:0], r"batch must hold at least one sample .*\(0, 2\)"),
        (EllipseEnergy, lambda y, x: [y[:0].numpy()], r"batch must hold at least one sample"),
        (HornEnergy, lambda y, x: (x[:0], y[:0]), r"batch must hold at least one sample"),
        (
            EllipseEnergy,
            lambda y, x: [],
            r"batch must be y, \[y\] or \[x, y\], got a list of length 0",
        ),
        (EllipseEnergy, lambda y, x: y.tolist(), r"batch must be .*list of length 6"),
        # the grid-expanded rows (B·n_z = 48) used to appear in these messages
        (
            EllipseEnergy,
            lambda y, x: torch.zeros(6, 3),
            r"^y must have shape \(B, 2\), got \(6, 3\)",
        ),
        (
            HornEnergy,
            lambda y, x: (x, torch.zeros(6, 3)),
            r"^y must have shape \(B, 2\), got \(6, 3\)",
        ),
        (
            HornEnergy,
            lambda y, x: (torch.zeros(6, 2), y),
            r"^x must have shape \(B, 1\), got \(6, 2\)",
        ),
    ],
)
def test_training_step_refuses_bad_batches_naming_them(model, batch, match):
    y, x = _yx()
    with pytest.raises(ValueError, match=match):
        model(n_z=8).training_step(batch(y, x))
