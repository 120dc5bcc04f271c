"""Score-matching losses against Gaussian closed forms."""

from __future__ import annotations

import pytest
import torch

from ebm.energies import GaussianEnergy
from ebm.score_matching import (
    denoising_score_matching_loss,
    exact_score_matching_loss,
    sliced_score_matching_loss,
)

MU_D = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
COV_D = torch.tensor([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]], dtype=torch.float64)
MU_M = torch.tensor([0.0, -0.5, 0.3], dtype=torch.float64)
COV_M = torch.tensor([[2.0, 0.0, 0.2], [0.0, 1.0, 0.0], [0.2, 0.0, 0.7]], dtype=torch.float64)


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return MU_D + z @ torch.linalg.cholesky(COV_D).T


def _closed_form_j():
    """For E = ½(x − μ_m)ᵀP(x − μ_m) and x ~ N(μ_d, Σ_d):
    J = E[½‖P(x − μ_m)‖² − tr P] = ½ tr(P²Σ_d) + ½ ‖P(μ_d − μ_m)‖² − tr P."""
    P = torch.linalg.inv(COV_M)
    d = P @ (MU_D - MU_M)
    return 0.5 * torch.trace(P @ P @ COV_D) + 0.5 * d @ d - torch.trace(P)


def test_exact_score_matching_matches_the_closed_form():
    energy = GaussianEnergy(MU_M, COV_M)
    j = exact_score_matching_loss(energy, _data(40000))
    torch.testing.assert_close(j, _closed_form_j(), atol=0.03, rtol=0)


def test_exact_score_matching_of_the_true_model_is_minus_half_trace():
    # at E = −log p_data + const the objective is −½ tr Σ_d⁻¹, its minimum
    true = exact_score_matching_loss(GaussianEnergy(MU_D, COV_D), _data(40000))
    expected = -0.5 * torch.trace(torch.linalg.inv(COV_D))
    torch.testing.assert_close(true, expected, atol=0.03, rtol=0)
    assert true < exact_score_matching_loss(GaussianEnergy(MU_M, COV_M), _data(40000))


@pytest.mark.parametrize("variance_reduction", [True, False])
def test_sliced_estimate_is_unbiased_for_the_exact_objective(variance_reduction):
    energy = GaussianEnergy(MU_M, COV_M)
    x = _data(200)
    exact = exact_score_matching_loss(energy, x)
    sliced = sliced_score_matching_loss(
        energy,
        x,
        n_projections=400,
        variance_reduction=variance_reduction,
        generator=torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(sliced, exact, atol=0.05, rtol=0)


def test_sliced_score_matching_minimiser_recovers_the_data_gaussian():
    g = torch.Generator().manual_seed(3)
    x = _data(2000, seed=2).float()
    mean = torch.nn.Parameter(torch.zeros(3))
    chol = torch.nn.Parameter(torch.eye(3))

    def energy(y):
        d = (y - mean) @ chol
        return 0.5 * d.pow(2).sum(1)

    opt = torch.optim.Adam([mean, chol], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        sliced_score_matching_loss(energy, x, generator=g).backward()
        opt.step()
    precision = (chol @ chol.T).detach().double()
    torch.testing.assert_close(mean.detach().double(), MU_D, atol=0.08, rtol=0)
    torch.testing.assert_close(precision, torch.linalg.inv(COV_D), atol=0.25, rtol=0.1)


def test_denoising_loss_matches_its_closed_form_and_minimiser():
    """E = ½ p‖x‖², x ~ N(0, s²I) in d dims: the DSM loss is ½ d [σ²p²s² + (σ²p − 1)²],
    minimised at p = 1/(s² + σ²), the precision of the noisy data."""
    s, sigma, d = 0.8, 0.5, 4
    x = s * torch.randn(50000, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for p in (0.5, 1.0 / (s**2 + sigma**2), 3.0):
        loss = denoising_score_matching_loss(
            lambda y, p=p: 0.5 * p * y.pow(2).sum(1),
            x,
            sigma,
            generator=torch.Generator().manual_seed(1),
        )
        expected = 0.5 * d * (sigma**2 * p**2 * s**2 + (sigma**2 * p - 1) ** 2)
        torch.testing.assert_close(
            loss, torch.tensor(expected, dtype=loss.dtype), rtol=0.02, atol=0
        )


def test_losses_backpropagate_into_energy_parameters():
    from ebm.energies import MLPEnergy

    energy = MLPEnergy(2, hidden=(8,))
    x = torch.randn(16, 2)
    for loss in (
        exact_score_matching_loss(energy, x),
        sliced_score_matching_loss(energy, x),
        denoising_score_matching_loss(energy, x, 0.1),
    ):
        energy.zero_grad()
        loss.backward()
        # the score ignores the last bias (an energy offset); every other weight gets a gradient
        params = [p for name, p in energy.named_parameters() if name != "net.2.bias"]
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


def test_bad_arguments_are_rejected():
    energy = GaussianEnergy(MU_M, COV_M)
    with pytest.raises(ValueError, match="x"):
        exact_score_matching_loss(energy, torch.zeros(3))
    with pytest.raises(ValueError, match="sigma"):
        denoising_score_matching_loss(energy, _data(4), 0.0)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_score_matching_loss(energy, _data(4), n_projections=0)
    with pytest.raises(ValueError, match="energy must return"):
        exact_score_matching_loss(lambda y: y, _data(4))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda e, x: denoising_score_matching_loss(e, x, float("inf")), "sigma"),
        (lambda e, x: denoising_score_matching_loss(e, x, "0.1"), "sigma"),
        (lambda e, x: sliced_score_matching_loss(e, x, n_projections=True), "n_projections"),
        (lambda e, x: sliced_score_matching_loss(e, x, n_projections=2.0), "n_projections"),
        (
            lambda e, x: sliced_score_matching_loss(e, x, variance_reduction="no"),
            "variance_reduction",
        ),
        (lambda e, x: sliced_score_matching_loss(e, x, generator=0), "generator"),
        (lambda e, x: exact_score_matching_loss(e, x[:0]), "x must"),
        (lambda e, x: exact_score_matching_loss(e, "x"), "x must"),
    ],
)
def test_hyper_parameters_and_data_shape_are_rejected_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call(GaussianEnergy(MU_M, COV_M), _data(4))


def test_data_is_cast_to_the_energy_dtype_and_integers_promoted():
    from ebm.energies import MLPEnergy

    torch.manual_seed(0)  # the MLP's initial weights; tests own the global RNG
    energy = MLPEnergy(3, hidden=(8,))
    x = _data(6).float()
    for loss in (
        exact_score_matching_loss,
        lambda e, y: sliced_score_matching_loss(e, y, generator=torch.Generator().manual_seed(0)),
        lambda e, y: denoising_score_matching_loss(
            e, y, 0.1, generator=torch.Generator().manual_seed(0)
        ),
    ):
        reference = loss(energy, x)
        from_double = loss(energy, x.double())
        assert from_double.dtype == torch.float32
        torch.testing.assert_close(from_double, reference)
        torch.testing.assert_close(loss(energy, x.tolist()), reference)
        counts = torch.tensor([[1, 0, 2], [0, 1, 1]])
        torch.testing.assert_close(loss(energy, counts), loss(energy, counts.float()))
