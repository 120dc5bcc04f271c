"""Deep ensemble: independent members, reproducible, the caller's RNG untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ebm.bayes import DeepEnsemble


def make_net():
    return nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))


@pytest.fixture(scope="module")
def data():
    x = torch.linspace(-2, 2, 32).view(-1, 1)
    return x, 0.5 * x**2


def test_members_differ_fit_the_data_and_are_reproducible(data):
    x, y = data
    rng = torch.get_rng_state()
    a = DeepEnsemble(make_net, 3, optimizer="adam", lr=0.02, max_epochs=300, seed=1, device="cpu")
    a.fit(x, y)
    assert torch.equal(torch.get_rng_state(), rng)  # no global side effect
    b = DeepEnsemble(make_net, 3, optimizer="adam", lr=0.02, max_epochs=300, seed=1, device="cpu")
    b.fit(x, y)
    pa, pb = a.predict(x), b.predict(x)
    torch.testing.assert_close(pa.samples, pb.samples)
    assert pa.samples.shape == (3, 32, 1)
    assert ((pa.mean - y) ** 2).mean() < 0.01  # all members fit the parabola
    w = [m[0].weight for m in a.members_]
    assert not torch.allclose(w[0], w[1])  # different initialisations
    far = a.predict(torch.tensor([[8.0]])).std
    assert far.item() > 3 * pa.std.mean().item()  # they disagree away from the data


def test_bad_input():
    with pytest.raises(ValueError, match="n_members"):
        DeepEnsemble(make_net, 1)
    with pytest.raises(ValueError, match="make_net"):
        DeepEnsemble(3)
    with pytest.raises(ValueError, match="not fitted"):
        DeepEnsemble(make_net).predict(torch.zeros(2, 1))


# ---- the input convention (issue 12) --------------------------------------------------------


def test_float64_integer_and_list_data_are_cast_to_the_members_dtype(data):
    x, y = data
    queries = torch.tensor([[-1.0], [0.5]])

    def run(xd, yd, q):
        ens = DeepEnsemble(make_net, 2, optimizer="adam", lr=0.02, max_epochs=5, device="cpu")
        return ens.fit(xd, yd).predict(q)

    ref = run(x, y, queries)
    for xd, yd, q in (
        (x.double(), y.double(), queries.double()),
        (x.tolist(), y.numpy(), [[-1], [0.5]]),
    ):
        got = run(xd, yd, q)
        assert got.samples.dtype == torch.float32
        torch.testing.assert_close(got.samples, ref.samples)


def test_targets_must_fit_the_nets_output(data):
    x, y = data
    ens = DeepEnsemble(make_net, 2, max_epochs=1, device="cpu")
    # (N,) targets against (N, 1) outputs used to broadcast to (N, N) in the MSE: a wrong fit
    with pytest.raises(ValueError, match=r"\by\b"):
        ens.fit(x, y.squeeze(1))
    clf = DeepEnsemble(lambda: nn.Linear(1, 3), 2, loss="cross_entropy", max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"\by\b.*\[0, 3\)"):
        clf.fit(x, torch.full((len(x),), 3))
    with pytest.raises(ValueError, match=r"\by\b"):
        clf.fit(x, torch.zeros(len(x)))  # float labels
    clf.fit(x, (x.squeeze(1) > 0).long())  # valid labels train


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_members": True}, "n_members"),
        ({"loss": "l1"}, "loss"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"noise_var": float("inf")}, "noise_var"),
        ({"seed": -1}, "seed"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_hyper_parameters_raise_at_construction(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        DeepEnsemble(make_net, **kwargs)


def test_bad_data_names_the_argument(data):
    x, y = data
    ens = DeepEnsemble(make_net, 2, max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"\bx\b"):
        ens.fit(x * float("nan"), y)
    with pytest.raises(ValueError, match=r"\by\b"):
        ens.fit(x, y[:-1])
    ens.fit(x, y)
    with pytest.raises(ValueError, match=r"\bx\b"):
        ens.predict([[float("inf")]])


def test_supervised_validates_hyper_parameters_and_target_shapes():
    from ebm.bayes import Supervised

    with pytest.raises(ValueError, match="weight_decay"):
        Supervised(make_net(), weight_decay=float("nan"))
    for momentum in (-0.5, 1.0, 1.5):  # SGD's momentum must be in [0, 1): 1 never forgets
        with pytest.raises(ValueError, match="momentum"):
            Supervised(make_net(), momentum=momentum)
    model = Supervised(make_net())
    x = torch.zeros(4, 1)
    with pytest.raises(ValueError, match=r"\by\b"):
        model.training_step((x, torch.zeros(4)))  # would broadcast (4, 1) against (4,)


def test_supervised_forward_accepts_array_likes_and_casts_to_the_nets_dtype():
    from ebm.bayes import Supervised

    model = Supervised(make_net())
    x = torch.tensor([[1], [0], [-2]])
    ref = model(x.float())
    torch.testing.assert_close(ref, model.net(x.float()))
    for alt in (x, x.numpy(), x.tolist(), x.double()):
        got = model(alt)
        assert got.dtype == torch.float32  # float64 data computed in the net's float32
        torch.testing.assert_close(got, ref)
    torch.testing.assert_close(model(x != 0), model((x != 0).float()))


def test_supervised_steps_take_array_like_pairs_like_tensors():
    from ebm.bayes import Supervised

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g)
    model = Supervised(make_net())
    expected = model.training_step((x, y))
    for batch in ((x.numpy(), y.numpy()), [x.double(), y.double().numpy()], [x.tolist(), y]):
        torch.testing.assert_close(model.training_step(batch), expected, rtol=0, atol=0)
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    clf = Supervised(nn.Linear(1, 3), loss="cross_entropy")
    expected = clf.training_step((x, labels))
    for batch in ((x, labels.numpy()), (x.numpy(), labels.tolist()), (x, labels.int())):
        torch.testing.assert_close(clf.training_step(batch), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "batch,match",
    [
        # x alone: a batch of two rows was read as (x = row 0, y = row 1) and trained silently
        (lambda x, y: x[:2], r"batch must be \(x, y\).*got Tensor of shape \(2, 1\)"),
        (lambda x, y: x, r"batch must be \(x, y\).*got Tensor of shape \(6, 1\)"),
        (lambda x, y: x.numpy(), r"batch must be \(x, y\).*got ndarray"),
        (lambda x, y: [x], r"batch must be \(x, y\).*list of length 1"),
        (lambda x, y: (x, y, y), r"batch must be \(x, y\).*tuple of length 3"),
        (lambda x, y: (x, y[:, 0]), r"batch\[1\] \(the targets y\) must have the shape"),
    ],
)
def test_supervised_steps_refuse_what_is_not_an_x_y_pair(batch, match):
    from ebm.bayes import Supervised

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g)
    with pytest.raises(ValueError, match=match):
        Supervised(make_net()).training_step(batch(x, y))


@pytest.mark.parametrize("labels", [torch.zeros(6), torch.zeros(6, dtype=torch.bool)])
def test_supervised_cross_entropy_refuses_float_or_bool_labels(labels):
    from ebm.bayes import Supervised

    with pytest.raises(ValueError, match=r"batch\[1\] \(the labels y\) must hold integer"):
        Supervised(nn.Linear(1, 3), loss="cross_entropy").training_step((torch.zeros(6, 1), labels))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_supervised_refuses_an_empty_batch(loss):
    """B = 0: the mean loss was tensor(nan), a believable-looking training step."""
    from ebm.bayes import Supervised

    model = Supervised(nn.Linear(2, 1 if loss == "mse" else 3), loss=loss)
    y = torch.zeros(0, 1) if loss == "mse" else torch.zeros(0, dtype=torch.int64)
    for batch in ([torch.zeros(0, 2), y], (np.zeros((0, 2)), y.numpy())):
        with pytest.raises(ValueError, match=r"^batch must hold at least one sample.*\(0, 2\)"):
            model.training_step(batch)
        with pytest.raises(ValueError, match=r"^batch must hold at least one sample"):
            model.validation_step(batch)


def test_supervised_range_checks_array_like_labels_against_the_logits():
    """Array-like labels are on the host already: checked against C = logits.shape[1] (was an
    IndexError from F.cross_entropy); in range, they give torch's cross-entropy."""
    from ebm.bayes import Supervised

    model = Supervised(nn.Linear(2, 3), loss="cross_entropy")
    x = np.zeros((2, 2), dtype=np.float32)
    for labels in (np.array([0, 7]), [0, 3], [-1, 0]):
        with pytest.raises(ValueError, match=r"^batch\[1\] must hold indices in \[0, 3\)"):
            model.training_step([x, labels])
    labels = np.array([0, 2])
    expected = F.cross_entropy(model.net(torch.from_numpy(x)), torch.from_numpy(labels))
    torch.testing.assert_close(model.training_step([x, labels]), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "labels,got",
    [
        (torch.zeros(4, 1, dtype=torch.int64), r"\(4, 1\)"),  # torch: "0D or 1D target tensor"
        (torch.zeros(3, dtype=torch.int64), r"\(3,\)"),  # torch: "Expected input batch_size"
        (torch.zeros(5, dtype=torch.int64), r"\(5,\)"),
        (torch.zeros((), dtype=torch.int64), r"\(\)"),
    ],
)
def test_supervised_cross_entropy_checks_the_labels_shape(labels, got):
    from ebm.bayes import Supervised

    model = Supervised(nn.Linear(2, 3), loss="cross_entropy")
    match = r"^batch\[1\] \(the labels y\) must have shape \(4,\).*logits \(4, 3\), got " + got
    with pytest.raises(ValueError, match=match):
        model.training_step((torch.zeros(4, 2), labels))


def test_supervised_fit_on_inputs_alone_is_refused_by_the_trainer():
    """Trainer.fit(Supervised, x) with batches of two rows used to train on row 0 -> row 1."""
    from ebm.bayes import Supervised
    from ebm.train import Trainer

    trainer = Trainer(
        max_epochs=1, batch_size=2, progress=False, tensorboard=False, log_every_n_steps=None
    )
    with pytest.raises(ValueError, match=r"batch must be \(x, y\)"):
        trainer.fit(
            Supervised(make_net()), torch.randn(8, 1, generator=torch.Generator().manual_seed(0))
        )
