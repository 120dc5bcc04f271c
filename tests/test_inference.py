"""Tests for ebm.inference: free energy limits, minimisers of analytic energies, flows."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import CircleEnergy, GaussianEnergy
from ebm.inference import flow, gradient_flow

# ---- flow / gradient_flow ---------------------------------------------------------------------


@pytest.mark.parametrize("method,options", [("dopri5", None), ("rk4", {"step_size": 0.01})])
def test_flow_matches_linear_ode_closed_form(method, options):
    # dy/dt = A y with A = diag(-1, -3): y(t) = exp(A t) y0
    rates = torch.tensor([1.0, 3.0], dtype=torch.float64)
    y0 = torch.tensor([[1.0, 2.0], [-0.5, 0.3]], dtype=torch.float64)
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    path = flow(lambda y: -rates * y, y0, t, method=method, options=options)
    expected = y0 * torch.exp(-rates * t[:, None, None])
    assert path.shape == (5, 2, 2)
    torch.testing.assert_close(path, expected, rtol=1e-5, atol=1e-6)


def test_flow_autoencoder_field_relaxes_to_fixed_point():
    # dy/dt = G(y) - y with a constant "decoder" G = c: y(t) = c + (y0 - c) e^{-t}
    c = torch.tensor([0.5, -1.0])
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 1.0, 3.0])
    path = flow(lambda y: c - y, y0, t, method="rk4", options={"step_size": 0.05})
    expected = c + (y0 - c) * torch.exp(-t)[:, None, None]
    torch.testing.assert_close(path, expected, rtol=1e-4, atol=1e-5)


def test_gradient_flow_quadratic_closed_form():
    # E = ½ (y-μ)ᵀ P (y-μ) with P = diag(1, 4): y(t) = μ + exp(-P t)(y0 - μ)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    energy = GaussianEnergy(mean, torch.diag(torch.tensor([1.0, 0.25], dtype=torch.float64)))
    y0 = torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 1.5, 4, dtype=torch.float64)
    path = gradient_flow(energy, y0, t, method="rk4", options={"step_size": 0.01})
    decay = torch.exp(-torch.tensor([1.0, 4.0], dtype=torch.float64) * t[:, None, None])
    torch.testing.assert_close(path, mean + decay * (y0 - mean), rtol=1e-6, atol=1e-7)


def test_gradient_flow_descends_monotonically_onto_circle():
    radius = 1.5
    energy = CircleEnergy(radius)
    g = torch.Generator().manual_seed(1)
    angles = 2 * math.pi * torch.rand(16, generator=g)
    r0 = torch.cat([0.2 + 0.8 * torch.rand(8, generator=g), 2.0 + torch.rand(8, generator=g)])
    y0 = r0[:, None] * torch.stack([angles.cos(), angles.sin()], 1)
    t = torch.linspace(0, 3, 61)
    path = gradient_flow(energy, y0, t, method="rk4", options={"step_size": 0.005})
    e = energy(path.reshape(-1, 2)).reshape(len(t), -1)
    assert (e[1:] <= e[:-1] + 1e-6).all(), "energy increased along the gradient flow"
    torch.testing.assert_close(path[-1].norm(dim=1), torch.full((16,), radius), atol=1e-3, rtol=0)
    # the flow is radial for this energy: the angle is kept
    torch.testing.assert_close(torch.atan2(path[-1, :, 1], path[-1, :, 0]).cos(), angles.cos())


def test_gradient_flow_leaves_parameters_without_grad():
    energy = GaussianEnergy(torch.zeros(2), torch.eye(2))
    w = torch.nn.Parameter(torch.tensor(2.0))
    path = gradient_flow(lambda y: w * energy(y), torch.ones(3, 2), torch.tensor([0.0, 1.0]))
    assert not path.requires_grad and w.grad is None


def test_flow_rejects_bad_input():
    y0 = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="t must"):
        flow(lambda y: -y, y0, torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match="t must"):
        flow(lambda y: -y, y0, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="y0"):
        flow(lambda y: -y, [[0.0, 1.0]], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="field must return"):
        flow(lambda y: y.sum(1), y0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="method"):
        flow(lambda y: -y, y0, torch.tensor([0.0, 1.0]), method="leapfrog")
    with pytest.raises(ValueError, match="one value per sample"):
        gradient_flow(lambda y: y.pow(2), y0, torch.tensor([0.0, 1.0]))
