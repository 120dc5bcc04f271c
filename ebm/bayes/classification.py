"""Uncertainty of a classifier from T sampled logits: the predictive (total) entropy splits into
the expected entropy (aleatoric) and the mutual information between the label and the weights
(epistemic, BALD): H[E_t p_t] = E_t H[p_t] + I."""

from __future__ import annotations

from torch import Tensor

from ebm._checks import as_float_tensor, check_finite
from ebm.bayes.prediction import Prediction

__all__ = ["mean_probs", "predictive_entropy", "expected_entropy", "mutual_information"]


def _logit_samples(prediction: object) -> Tensor:
    """The logit samples (T, B, C) of a Prediction, a tensor or an array-like; finite, C >= 2."""
    if isinstance(prediction, Prediction):
        if prediction.samples is None:
            raise ValueError(
                "prediction must be a Prediction with samples (T, B, C) of logits, got one "
                "without samples (a closed-form prediction)"
            )
        samples = prediction.samples
    else:
        samples = as_float_tensor("prediction", prediction, finite=False)
    if samples.ndim != 3 or samples.shape[-1] < 2 or samples.shape[0] < 1:
        raise ValueError(
            "prediction must hold logit samples of shape (T, B, C) with T >= 1 and C >= 2, "
            f"got {tuple(samples.shape)}"
        )
    check_finite("prediction", samples)
    return samples


def _entropy(log_probs: Tensor) -> Tensor:
    return -(log_probs.exp() * log_probs).sum(-1)


def mean_probs(prediction: Prediction | Tensor) -> Tensor:
    """(B, C) average over the T samples of softmax(logits): the MC predictive distribution.

    prediction: a Prediction of logits (samples (T, B, C)) or the samples themselves (a tensor
    or an array-like, finite; integers promoted to float), T >= 1, C >= 2.

    >>> import torch
    >>> logits = torch.tensor([[[4.0, 0.0]], [[0.0, 4.0]]])  # T=2 passes that disagree, B=1
    >>> mean_probs(logits)
    tensor([[0.5000, 0.5000]])
    """
    return _logit_samples(prediction).softmax(-1).mean(0)


def predictive_entropy(prediction: Prediction | Tensor) -> Tensor:
    """(B,) entropy in nats of the mean softmax: total uncertainty, in [0, log C].

    prediction: a Prediction of logits (samples (T, B, C)) or the samples themselves, as for
    ``mean_probs``.

    >>> import torch
    >>> logits = torch.tensor([[[4.0, 0.0]], [[0.0, 4.0]]])  # T=2 passes that disagree, B=1
    >>> predictive_entropy(logits)  # log 2: the average prediction is a coin flip
    tensor([0.6931])
    """
    probs = mean_probs(prediction)
    return _entropy(probs.clamp_min(1e-30).log())


def expected_entropy(prediction: Prediction | Tensor) -> Tensor:
    """(B,) mean over samples of each sample's softmax entropy (nats): the aleatoric part.

    prediction: a Prediction of logits (samples (T, B, C)) or the samples themselves, as for
    ``mean_probs``.
    """
    return _entropy(_logit_samples(prediction).log_softmax(-1)).mean(0)


def mutual_information(prediction: Prediction | Tensor) -> Tensor:
    """(B,) predictive entropy − expected entropy >= 0 (nats): the epistemic part (BALD).

    prediction: a Prediction of logits (samples (T, B, C)) or the samples themselves, as for
    ``mean_probs``. Confident passes that disagree give a large value; passes that agree, 0.

    >>> import torch
    >>> agree = torch.tensor([[[4.0, 0.0]], [[4.0, 0.0]]])
    >>> mutual_information(agree)
    tensor([0.])
    """
    return (predictive_entropy(prediction) - expected_entropy(prediction)).clamp_min(0.0)
