"""The replay buffer: real re-draws written back, state in state_dict, validation."""

from __future__ import annotations

import pytest
import torch

from ebm.sampling import ReplayBuffer


def test_initial_fill_is_the_noise_distribution():
    uniform = ReplayBuffer(20000, (2,), noise="uniform", scale=2.0, seed=0).samples
    assert uniform.min() >= -2.0 and uniform.max() <= 2.0
    torch.testing.assert_close(uniform.var(0), torch.full((2,), 4.0 / 3.0), atol=0.05, rtol=0)
    normal = ReplayBuffer(20000, (3,), noise="normal", scale=0.5, seed=0).samples
    torch.testing.assert_close(normal.std(0), torch.full((3,), 0.5), atol=0.02, rtol=0)


def test_reinit_redraws_and_writes_back_to_the_slots():
    buf = ReplayBuffer(1000, (2,), reinit_prob=1.0, noise="uniform", scale=1.0, seed=0)
    # fill with a sentinel that fresh noise can never produce
    buf.samples.fill_(50.0)
    g = torch.Generator().manual_seed(1)
    x, idx = buf.sample(400, generator=g)
    assert x.abs().max() <= 1.0  # every state is a fresh draw
    assert torch.equal(buf.samples[idx], x)  # ... and the buffer holds it now
    untouched = torch.ones(1000, dtype=torch.bool)
    untouched[idx] = False
    assert (buf.samples[untouched] == 50.0).all()
    assert len(idx.unique()) == 400  # distinct slots


def test_reinit_probability_is_respected_and_zero_keeps_the_chains():
    buf = ReplayBuffer(4000, (1,), reinit_prob=0.25, seed=0)
    buf.samples.fill_(50.0)
    x, _ = buf.sample(4000, generator=torch.Generator().manual_seed(2))
    frac = float((x.abs() <= 1.0).float().mean())
    assert abs(frac - 0.25) < 0.03
    keep = ReplayBuffer(100, (1,), reinit_prob=0.0, seed=0)
    before = keep.samples.clone()
    x, idx = keep.sample(50)
    assert torch.equal(x, before[idx]) and torch.equal(keep.samples, before)


def test_push_stores_states_and_sample_returns_a_copy():
    buf = ReplayBuffer(10, (2,), reinit_prob=0.0, seed=0)
    x, idx = buf.sample(4)
    x += 100.0  # mutating the returned batch must not touch the buffer
    assert buf.samples.abs().max() <= 1.0
    buf.push(x, idx)
    assert torch.equal(buf.samples[idx], x)


def test_state_round_trips_through_state_dict():
    a = ReplayBuffer(64, (2, 3), seed=0)
    a.sample(10)
    b = ReplayBuffer(64, (2, 3), seed=1)
    assert not torch.equal(a.samples, b.samples)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.samples, b.samples)
    assert "samples" in dict(torch.nn.Sequential(a).state_dict()).keys().__iter__().__next__()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"capacity": 0}, "capacity"),
        ({"shape": ()}, "shape"),
        ({"reinit_prob": 1.5}, "reinit_prob"),
        ({"noise": "laplace"}, "noise"),
        ({"scale": -1.0}, "scale"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    args = {"capacity": 10, "shape": (2,), **kwargs}
    with pytest.raises(ValueError, match=match):
        ReplayBuffer(**args)


def test_bad_sample_and_push_calls_are_rejected():
    buf = ReplayBuffer(10, (2,))
    with pytest.raises(ValueError, match="n must"):
        buf.sample(11)
    x, idx = buf.sample(3)
    with pytest.raises(ValueError, match="states"):
        buf.push(x[:, :1], idx)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"shape": (2.5,)}, r"shape\[0\]"),
        ({"shape": (2, 0)}, r"shape\[1\]"),
        ({"shape": "ab"}, "shape"),
        ({"reinit_prob": float("nan")}, "reinit_prob"),
        ({"reinit_prob": "0.1"}, "reinit_prob"),
        ({"scale": float("inf")}, "scale"),
    ],
)
def test_mistyped_and_non_finite_arguments_are_rejected_by_name(kwargs, match):
    args = {"capacity": 10, "shape": (2,), **kwargs}
    with pytest.raises(ValueError, match=match):
        ReplayBuffer(**args)


def test_counts_are_checked_and_pushed_array_likes_are_cast():
    buf = ReplayBuffer(10, (2,), reinit_prob=0.0, seed=0)
    for n in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n must"):
            buf.draw_noise(n)
        with pytest.raises(ValueError, match="n must"):
            buf.sample(n)
    x, idx = buf.sample(3)
    buf.push((x.double() + 1).tolist(), idx)
    assert buf.samples.dtype == torch.float32
    torch.testing.assert_close(buf.samples[idx], x + 1)
