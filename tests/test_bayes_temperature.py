"""Temperature and vector scaling: the known temperature / scales recovered from synthetic
logits, the exact optimum against scipy, identities, the ECE on the digits, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax
from sklearn.base import clone
from torch import nn

from ebm.bayes import TemperatureScaling, VectorScaling
from ebm.metrics import adaptive_ece, expected_calibration_error


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _synthetic(n: int, k: int, transform, seed: int = 0):
    """Logits z ~ N(0, 3²) and labels drawn from softmax(transform(z)): the true calibration map."""
    g = _gen(seed)
    z = 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    labels = torch.multinomial(transform(z).softmax(1), 1, generator=g)[:, 0]
    return z, labels


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    return -log_softmax(z, axis=1)[np.arange(len(y)), y].mean()


def test_temperature_is_recovered_and_is_the_exact_optimum():
    z, y = _synthetic(20000, 5, lambda z: z / 2.5)
    ts = TemperatureScaling().fit(z, y)
    assert abs(ts.temperature_.item() - 2.5) < 0.1  # the data's temperature, within sampling
    zn, yn = z.numpy(), y.numpy()
    best = minimize_scalar(
        lambda log_t: _nll(zn / np.exp(log_t), yn),
        bounds=(-3, 3),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert ts.temperature_.item() == pytest.approx(math.exp(best.x), rel=1e-5)
    assert ts.nll_ == pytest.approx(best.fun, rel=1e-9)
    assert ts.temperature_.dtype == torch.float64 and ts.temperature_.ndim == 0


def test_temperature_sharpens_an_underconfident_model():
    z, y = _synthetic(5000, 4, lambda z: 3 * z)
    assert TemperatureScaling().fit(z, y).temperature_.item() == pytest.approx(1 / 3, rel=0.1)


def test_vector_scaling_recovers_scales_and_centred_biases():
    w = torch.tensor([0.5, 1.0, 1.5, 2.0, 0.8], dtype=torch.float64)
    b = torch.tensor([0.3, -0.2, 0.0, 0.5, -0.6], dtype=torch.float64)
    z, y = _synthetic(40000, 5, lambda z: z * w + b)
    vs = VectorScaling().fit(z, y)
    torch.testing.assert_close(vs.scale_, w, atol=0.08, rtol=0)
    torch.testing.assert_close(vs.bias_, b - b.mean(), atol=0.08, rtol=0)
    assert abs(vs.bias_.sum().item()) < 1e-12
    zn, yn = z[:4000].numpy(), y[:4000].numpy()
    reference = minimize(
        lambda p: _nll(zn * p[:5] + p[5:], yn),
        np.r_[np.ones(5), np.zeros(5)],
        method="BFGS",
        options={"gtol": 1e-10},
    )
    small = VectorScaling().fit(z[:4000], y[:4000])
    assert small.nll_ == pytest.approx(reference.fun, rel=1e-7)
    np.testing.assert_allclose(small.scale_.numpy(), reference.x[:5], atol=1e-4)


def test_identities():
    z, y = _synthetic(3000, 6, lambda z: z / 2)
    ts = TemperatureScaling().fit(z, y)
    vs = VectorScaling().fit(z, y)
    # vector scaling contains temperature scaling (w = 1/T, b = 0): its optimum is no worse
    assert vs.nll_ <= ts.nll_ + 1e-12
    # temperature scaling keeps every argmax; transform and __call__ agree; probabilities sum to 1
    assert torch.equal(ts.transform(z).argmax(1), z.argmax(1))
    assert torch.equal(ts(z), ts.transform(z))
    torch.testing.assert_close(ts.predict_proba(z).sum(1), torch.ones(3000, dtype=torch.float64))
    assert ts.nll_ == pytest.approx(F.cross_entropy(ts(z), y).item(), rel=1e-12)
    # the output follows the logits' dtype; array-likes are accepted
    assert ts(z.float()).dtype == torch.float32
    torch.testing.assert_close(ts(z.numpy()), ts(z))
    # scikit-learn's clone gives an unfitted copy with equal parameters
    copy = clone(TemperatureScaling(max_iter=7))
    assert copy.max_iter == 7 and not hasattr(copy, "temperature_")


def _digits_logits():
    """Logits of a small MLP trained to zero loss on 300 digits: overconfident elsewhere."""
    from ebm.data import digits

    x, y = digits("all")
    x = x.flatten(1)
    g = _gen(0)
    perm = torch.randperm(len(x), generator=g)
    train, cal, test = perm[:300], perm[300:1000], perm[1000:]
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(0.1 * torch.randn(param.shape, generator=g))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-2)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(net(x[train]), y[train]).backward()
        optimizer.step()
    with torch.no_grad():
        return net(x[cal]), y[cal], net(x[test]), y[test]


def test_temperature_scaling_lowers_the_ece_on_the_digits():
    z_cal, y_cal, z_test, y_test = _digits_logits()
    ts = TemperatureScaling().fit(z_cal, y_cal)
    assert ts.temperature_.item() > 1.2  # the net is overconfident off its training set
    before = z_test.softmax(1)
    after = ts.predict_proba(z_test)
    ece_before = expected_calibration_error(before, y_test).item()
    ece_after = expected_calibration_error(after, y_test).item()
    assert ece_after < 0.7 * ece_before, (ece_before, ece_after)
    assert adaptive_ece(after, y_test) < 0.7 * adaptive_ece(before, y_test)
    assert F.cross_entropy(ts(z_test), y_test) < F.cross_entropy(z_test, y_test)
    assert torch.equal(after.argmax(1), before.argmax(1))
    vs = VectorScaling().fit(z_cal, y_cal)
    assert expected_calibration_error(vs.predict_proba(z_test), y_test) < ece_before


def test_bad_inputs_are_named():
    z, y = _synthetic(50, 3, lambda z: z)
    with pytest.raises(ValueError, match="max_iter"):
        TemperatureScaling(max_iter=0)
    with pytest.raises(ValueError, match="not fitted"):
        TemperatureScaling().transform(z)
    with pytest.raises(ValueError, match="logits contains NaN"):
        TemperatureScaling().fit(torch.full((4, 3), math.nan), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must have shape"):
        TemperatureScaling().fit(z[:, :1], torch.zeros(50, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must hold indices in \[0, 3\)"):
        TemperatureScaling().fit(z, torch.full((50,), 3))
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        VectorScaling().fit(z, y[:10])
    with pytest.raises(ValueError, match=r"K = 3 \(as fitted\)"):
        VectorScaling().fit(z, y).transform(torch.zeros(2, 4))


def test_device_agnostic(device):
    z, y = _synthetic(2000, 4, lambda z: z / 2)
    cpu = TemperatureScaling().fit(z, y)
    dev = TemperatureScaling().fit(z.to(device), y.to(device))
    assert dev.temperature_.device.type == device.type
    assert dev.temperature_.item() == pytest.approx(cpu.temperature_.item(), rel=1e-6)
    vs = VectorScaling().fit(z.to(device), y.to(device))
    assert vs.transform(z.to(device).float()).device.type == device.type
