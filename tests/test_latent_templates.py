"""ebm.latent.TemplateEnergy: sliding templates with the position as a discrete latent, checked
against a Python loop over the positions, the free energy's closed forms and its gradient."""

from __future__ import annotations

import math

import pytest
import torch

from ebm.energies import ClassEnergy
from ebm.latent import TemplateEnergy


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _brute_force(templates: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E(x, k, z) by a loop over every window: (B, K, H − h + 1, W − w + 1)."""
    _, _, h, w = templates.shape
    rows, cols = x.shape[2] - h + 1, x.shape[3] - w + 1
    out = torch.empty(x.shape[0], templates.shape[0], rows, cols, dtype=x.dtype)
    for r in range(rows):
        for c in range(cols):
            window = x[:, None, :, r : r + h, c : c + w]  # (B, 1, C, h, w)
            out[:, :, r, c] = (window - templates[None]).square().flatten(2).sum(2)
    return out


@pytest.fixture
def problem():
    t = torch.rand(3, 2, 3, 2, generator=_gen(0), dtype=torch.float64)  # K=3, C=2, h=3, w=2
    x = torch.rand(4, 2, 6, 5, generator=_gen(1), dtype=torch.float64)  # B=4, H=6, W=5
    return t, x


def test_energy_map_equals_a_loop_over_positions(problem):
    t, x = problem
    model = TemplateEnergy(t)
    with torch.no_grad():
        got = model.energy_map(x)
    assert got.shape == (4, 3, 4, 4)
    torch.testing.assert_close(got, _brute_force(t, x), rtol=1e-12, atol=1e-12)


def test_zero_temperature_is_the_min_over_positions_and_its_argmin(problem):
    t, x = problem
    brute = _brute_force(t, x).flatten(2)  # (B, K, 16)
    found = TemplateEnergy(t).free_energy(x)
    torch.testing.assert_close(found.free_energy.detach(), brute.amin(2), rtol=1e-12, atol=1e-12)
    where = brute.argmin(2)  # row-major window number -> (row, col)
    assert torch.equal(found.z, torch.stack([where // 4, where % 4], -1))
    assert found.z.dtype == torch.int64


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_finite_temperature_is_the_log_sum_over_positions(problem, beta):
    t, x = problem
    brute = _brute_force(t, x).flatten(2)
    expected = -torch.logsumexp(-beta * brute, 2) / beta
    model = TemplateEnergy(t, beta=beta)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)
        # free_energy's beta overrides the model's; below the min, by at most log(Nz)/β
        F_inf = model.free_energy(x, beta=math.inf).free_energy
    assert (expected <= F_inf).all() and (F_inf - expected <= math.log(16) / beta + 1e-12).all()


def test_the_gradient_at_zero_temperature_is_the_envelope_gradient(problem):
    t, x = problem
    model = TemplateEnergy(t)
    model(x).sum().backward()
    # d/dt_k Σ_b ‖window_ž(b,k) − t_k‖² = Σ_b 2 (t_k − window_ž(b,k))
    z = model.free_energy(x).z
    _, _, h, w = t.shape
    expected = torch.zeros_like(t)
    for b in range(x.shape[0]):
        for k in range(t.shape[0]):
            r, c = z[b, k].tolist()
            expected[k] += 2 * (t[k] - x[b, :, r : r + h, c : c + w])
    torch.testing.assert_close(model.templates.grad, expected, rtol=1e-10, atol=1e-12)


def test_a_digit_on_a_blank_canvas_is_found_where_it_was_put():
    templates = torch.rand(5, 1, 4, 4, generator=_gen(2))
    canvas = torch.zeros(5, 1, 9, 9)
    corners = torch.tensor([[0, 0], [5, 5], [2, 3], [4, 1], [1, 5]])
    for k, (r, c) in enumerate(corners.tolist()):  # template k at corner k
        canvas[k, 0, r : r + 4, c : c + 4] = templates[k, 0]
    model = ClassEnergy(TemplateEnergy(templates))
    found = model.backbone.free_energy(canvas)
    labels = torch.arange(5)
    assert torch.equal(found.z[labels, labels], corners)  # F = 0 exactly there
    # F = 0 up to float32 rounding of the conv form ‖p‖² − 2 t·p + ‖t‖²
    torch.testing.assert_close(
        found.free_energy.detach()[labels, labels], torch.zeros(5), atol=1e-5, rtol=0
    )
    assert torch.equal(model.predict(canvas), labels)


def test_inputs_are_cast_to_the_templates_dtype_and_integers_promoted():
    model = TemplateEnergy(torch.ones(2, 1, 1, 1, dtype=torch.float64))
    x = torch.tensor([[[[0, 1, 3]]]])  # int64 canvas (B=1, C=1, H=1, W=3)
    out = model(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.detach(), torch.zeros(1, 2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(templates=torch.rand(1, 1, 2, 2)), "templates"),  # K = 1: nothing to choose
        (dict(templates=torch.rand(2, 2, 2)), "templates"),  # not (K, C, h, w)
        (dict(templates=torch.full((2, 1, 2, 2), math.nan)), "templates"),
        (dict(templates=torch.rand(2, 1, 2, 2), beta=0.0), "beta"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TemplateEnergy(**kwargs)


@pytest.mark.parametrize(
    "x",
    [torch.rand(2, 1, 1, 5), torch.rand(2, 1, 5, 1), torch.rand(2, 3, 5, 5), torch.rand(5, 5)],
)
def test_a_canvas_that_cannot_hold_a_template_is_refused(x):
    model = TemplateEnergy(torch.rand(2, 1, 2, 2))
    with pytest.raises(ValueError, match="x must have"):
        model(x)
    with pytest.raises(ValueError, match="beta"):
        model.free_energy(torch.rand(2, 1, 4, 4), beta=-1.0)
