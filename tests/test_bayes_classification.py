"""Classification uncertainty from logit samples: identities and limits, scipy entropy reference."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import entropy

from ebm.bayes import (
    Prediction,
    expected_entropy,
    mean_probs,
    mutual_information,
    predictive_entropy,
)


def logits(seed=0, t=30, b=6, c=4, scale=3.0):
    return scale * torch.randn(t, b, c, generator=torch.Generator().manual_seed(seed))


def test_mean_probs_is_the_average_softmax():
    s = logits()
    pred = Prediction.from_samples(s)
    torch.testing.assert_close(mean_probs(pred), torch.softmax(s, -1).mean(0))
    torch.testing.assert_close(mean_probs(pred).sum(1), torch.ones(6))


def test_entropies_match_scipy_and_decompose():
    s = logits(1).double()
    p = torch.softmax(s, -1)
    ref_total = entropy(p.mean(0).numpy(), axis=1)
    ref_expected = entropy(p.numpy(), axis=2).mean(0)
    torch.testing.assert_close(predictive_entropy(s), torch.from_numpy(ref_total))
    torch.testing.assert_close(expected_entropy(s), torch.from_numpy(ref_expected))
    torch.testing.assert_close(mutual_information(s), torch.from_numpy(ref_total - ref_expected))


def test_limits():
    same = logits(2)[:1].expand(20, -1, -1)  # every sample identical: no epistemic uncertainty
    assert mutual_information(same).abs().max() < 1e-6
    flat = torch.zeros(5, 3, 10)
    torch.testing.assert_close(predictive_entropy(flat), torch.full((3,), math.log(10)))
    # confident but disagreeing samples: all the uncertainty is epistemic
    split = torch.tensor([[[50.0, 0.0]], [[0.0, 50.0]]]).repeat(10, 1, 1)
    torch.testing.assert_close(mutual_information(split), torch.tensor([math.log(2)]))
    assert (mutual_information(logits(3)) <= predictive_entropy(logits(3)) + 1e-6).all()


def test_bad_input():
    with pytest.raises(ValueError, match="samples"):
        mean_probs(Prediction(mean=torch.zeros(3, 2), var=torch.ones(3, 2)))
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        predictive_entropy(torch.zeros(4, 3))


def test_array_likes_and_integer_logits():
    s = torch.randint(-3, 4, (5, 2, 3), generator=torch.Generator().manual_seed(4))
    ref = torch.softmax(s.float(), -1).mean(0)
    torch.testing.assert_close(mean_probs(s), ref)
    torch.testing.assert_close(mean_probs(s.tolist()), ref)
    torch.testing.assert_close(mutual_information(s.numpy()), mutual_information(s.float()))


@pytest.mark.parametrize(
    "prediction",
    [
        torch.full((2, 3, 4), float("nan")),
        torch.tensor([[[0.0, float("inf")]]]),
        torch.zeros(0, 3, 2),
        "logits",
        Prediction(torch.zeros(3, 2), torch.ones(3, 2)),
    ],
)
def test_bad_prediction_is_named(prediction):
    for f in (mean_probs, predictive_entropy, expected_entropy, mutual_information):
        with pytest.raises(ValueError, match="prediction"):
            f(prediction)
