"""Uncertainty of a classifier from T sampled logits: the predictive (total) entropy splits into
the expected entropy (aleatoric) and the mutual information between the label and the weights
(epistemic, BALD): H[E_t p_t] = E_t H[p_t] + I."""

from __future__ import annotations

from torch import Tensor

from ebm.bayes.prediction import Prediction


def _logit_samples(prediction: Prediction | Tensor) -> Tensor:
    samples = prediction.samples if isinstance(prediction, Prediction) else prediction
    if not isinstance(samples, Tensor):
        raise ValueError(
            "prediction must be a Prediction with samples or a Tensor (T, B, C) of logits, got "
            f"{type(prediction).__name__} with samples {type(samples).__name__}"
        )
    if samples.ndim != 3 or samples.shape[-1] < 2:
        raise ValueError(
            f"logit samples must have shape (T, B, C) with C >= 2, got {tuple(samples.shape)}"
        )
    return samples


def _entropy(log_probs: Tensor) -> Tensor:
    return -(log_probs.exp() * log_probs).sum(-1)


def mean_probs(prediction: Prediction | Tensor) -> Tensor:
    """(B, C) average over the T samples of softmax(logits): the MC predictive distribution.

    prediction: a Prediction of logits (samples (T, B, C)) or the samples themselves.
    """
    return _logit_samples(prediction).softmax(-1).mean(0)


def predictive_entropy(prediction: Prediction | Tensor) -> Tensor:
    """(B,) entropy in nats of the mean softmax: total uncertainty."""
    probs = mean_probs(prediction)
    return _entropy(probs.clamp_min(1e-30).log())


def expected_entropy(prediction: Prediction | Tensor) -> Tensor:
    """(B,) mean over samples of each sample's softmax entropy: the aleatoric part."""
    return _entropy(_logit_samples(prediction).log_softmax(-1)).mean(0)


def mutual_information(prediction: Prediction | Tensor) -> Tensor:
    """(B,) predictive entropy − expected entropy >= 0: the epistemic part (BALD)."""
    return (predictive_entropy(prediction) - expected_entropy(prediction)).clamp_min(0.0)
