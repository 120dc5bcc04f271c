"""The energy-based loss family: pure functions on energy tensors, plus thin ``nn.Module`` wrappers.

Sign convention: low energy = good. Every loss pushes the energy of the correct answer down and,
except the plain energy loss, the energy of wrong answers up.

Notation (LeCun et al., "A tutorial on energy-based learning", 2006):

- ``p``: energy of the correct answer, any shape, usually (B,);
- ``n``: energy of the most offending incorrect answer (the lowest-energy wrong answer), same
  shape as ``p``; ``most_offending(E, target)`` computes it from candidate energies;
- ``E``: energies over a candidate set, (B, K) with K >= 2, and ``target``: (B,) integer labels.

Two losses shape an energy over binary data without its partition function, from the energies
of each data point's single-bit flips: ``ratio_matching_loss`` and ``mpf_loss`` take an energy
callable (B, d) -> (B,) and binary x (B, d) in {0, 1}.

Every loss takes ``reduction="mean" | "sum" | "none"`` (torch's convention, default ``"mean"``):
``"none"`` returns one value per sample, shaped like ``p`` (or (B,) for ``E``).

Validation is cheap: shapes, dtypes and hyper-parameters are checked on the host without looking
at tensor values, so NaN energies propagate as in torch. Energies may be tensors or array-likes;
integer and bool energies are promoted to float. Hyper-parameters (margins, caps, betas) must be
finite and > 0, ``alpha`` finite and >= 0, else a ``ValueError`` names them.

Two value checks concern labels, not energies: targets in ``[0, K)`` and the contrastive loss's
``same`` weights in ``[0, 1]``. Each is done for tensors on the CPU (where it costs a reduction
and no device sync) and skipped under ``torch.compile`` and on accelerators, where it would force
a host sync every step; there torch's own kernels (``gather``, ``cross_entropy``) catch
out-of-range targets with a device-side assert, and bool ``same`` labels cannot be out of range.
Pass ``check_target=True`` / ``check_same=True`` to force the check anywhere, ``False`` to skip it.

Energies, not log-probabilities: ``nll_loss``/``NLLLoss`` share torch's names but take
ENERGIES E (low = good), where ``torch.nn.functional.nll_loss`` takes log-probabilities. For
logits ``f``, the same loss is ``nll_loss(-f, y)`` = ``F.cross_entropy(f, y)``.

>>> import torch
>>> from ebm.losses import nll_loss, correct_and_offending, hinge_loss
>>> E = torch.tensor([[0.0, 2.0, 3.0], [1.0, 0.5, 4.0]])  # (B=2, K=3) energies, low = good
>>> y = torch.tensor([0, 0])  # sample 1 is right (lowest energy), sample 2 is wrong
>>> hinge_loss(*correct_and_offending(E, y), margin=1.0, reduction="none")
tensor([0.0000, 1.5000])
>>> torch.allclose(nll_loss(E, y), torch.nn.functional.cross_entropy(-E, y))
True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_positive,
    check_real,
    check_same_shape,
    module_dtype,
    per_sample_energies,
)

__all__ = [
    "energy_loss",
    "perceptron_loss",
    "hinge_loss",
    "log_loss",
    "lvq2_loss",
    "mce_loss",
    "square_square_loss",
    "square_exp_loss",
    "nll_loss",
    "mee_loss",
    "contrastive_loss",
    "contrastive_divergence_loss",
    "nce_loss",
    "ratio_matching_loss",
    "mpf_loss",
    "most_offending",
    "correct_and_offending",
    "EnergyLoss",
    "PerceptronLoss",
    "HingeLoss",
    "LogLoss",
    "LVQ2Loss",
    "MCELoss",
    "SquareSquareLoss",
    "SquareExpLoss",
    "NLLLoss",
    "MEELoss",
    "ContrastiveLoss",
    "ContrastiveDivergenceLoss",
    "NCELoss",
    "RatioMatchingLoss",
    "MPFLoss",
]


def __dir__() -> list[str]:
    return sorted(__all__)


_REDUCTIONS = ("mean", "sum", "none")


# ---- private helpers ----------------------------------------------------------------------------


def _reduce(values: Tensor, reduction: str) -> Tensor:
    """Apply torch's reduction convention to per-sample losses."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _check_reduction(reduction: str) -> None:
    check_choice("reduction", reduction, _REDUCTIONS)


def _check_energy(name: str, value: object) -> Tensor:
    """Energies as a floating tensor: array-likes accepted, integers/bools promoted (no sync)."""
    return as_float_tensor(name, value, finite=False)


def _check_pair(p: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """p and n: floating tensors of one shape (no broadcasting)."""
    p = _check_energy("p", p)
    n = _check_energy("n", n)
    if p.shape != n.shape:
        raise ValueError(
            f"p and n must have the same shape (no broadcasting), got p {tuple(p.shape)} "
            f"and n {tuple(n.shape)}"
        )
    return p, n


def _value_check(flag: bool | None, t: Tensor, name: str) -> bool:
    """Whether to look at the values of ``t``: forced by ``flag``, else only on the CPU (no device
    sync) and outside torch.compile."""
    if flag is None:
        return t.device.type == "cpu" and not torch.compiler.is_compiling()
    if not isinstance(flag, bool):
        raise ValueError(f"{name} must be None, True or False, got {flag!r}")
    return flag


def _as_labels(name: str, value: object) -> Tensor:
    """A tensor of labels (dtype kept, no promotion); array-likes through numpy."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a tensor or an array-like of labels, got {value!r}")
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a rectangular array of labels: {err}") from err


def _check_candidates(
    E: Tensor, target: Tensor, check_target: bool | None
) -> tuple[Tensor, Tensor]:
    """E: (B, K) floating with K >= 2; target: (B,) integer labels in [0, K).
    Returns E (floating) and the int64 target."""
    E = _check_energy("E", E)
    if E.ndim != 2:
        raise ValueError(f"E must have shape (B, K), got {tuple(E.shape)}")
    B, K = E.shape
    if K < 2:
        raise ValueError(f"E must hold K >= 2 candidate energies per sample, got shape {(B, K)}")
    target = _as_labels("target", target)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer labels, got dtype {target.dtype}")
    if target.shape != (B,):
        raise ValueError(
            f"target must have shape ({B},) to match E {tuple(E.shape)}, got {tuple(target.shape)}"
        )
    if _value_check(check_target, target, "check_target") and B > 0:
        lo, hi = torch.aminmax(target)
        if int(lo) < 0 or int(hi) >= K:
            raise ValueError(
                f"target must lie in [0, {K}) for E of shape {tuple(E.shape)}, "
                f"got values in [{int(lo)}, {int(hi)}]"
            )
    return E, target.long()


def _check_alpha(alpha: float) -> float:
    return check_real("alpha", alpha, 0.0)


def _pick(E: Tensor, target: Tensor) -> Tensor:
    """E[b, target[b]], (B,)."""
    return E.gather(1, target.unsqueeze(1)).squeeze(1)


def _most_offending(E: Tensor, target: Tensor) -> Tensor:
    is_target = torch.arange(E.shape[1], device=E.device) == target.unsqueeze(1)  # (B, K)
    return E.masked_fill(is_target, float("inf")).amin(dim=1)


# ---- candidate energies -> (p, n) ---------------------------------------------------------------


def most_offending(E: Tensor, target: Tensor, *, check_target: bool | None = None) -> Tensor:
    """The lowest energy among the incorrect answers: min_{k != target} E[:, k].

    E: (B, K) energies, K >= 2, low = good; target: (B,) integer labels in [0, K).
    check_target: whether to check that target lies in [0, K): None (default) checks on the
    CPU only, where it costs no device sync; True or False force it (see the module docstring).
    Returns n, (B,).
    """
    E, target = _check_candidates(E, target, check_target)
    return _most_offending(E, target)


def correct_and_offending(
    E: Tensor, target: Tensor, *, check_target: bool | None = None
) -> tuple[Tensor, Tensor]:
    """(p, n) from candidate energies: p = E[target], n = most_offending(E, target), each (B,).

    Feeds the pairwise losses (hinge, log, LVQ2, MCE, square-square, square-exp) from a
    classifier's energies, e.g. ``hinge_loss(*correct_and_offending(E, y))``.
    E: (B, K) energies, K >= 2, low = good; target: (B,) integer labels in [0, K).
    check_target: whether to check that target lies in [0, K): None (default) checks on the
    CPU only, where it costs no device sync; True or False force it (see the module docstring).
    """
    E, target = _check_candidates(E, target, check_target)
    return _pick(E, target), _most_offending(E, target)


# ---- the loss family: functions -----------------------------------------------------------------


def energy_loss(p: Tensor, reduction: str = "mean") -> Tensor:
    """Energy loss: p. Pushes the correct energy down and nothing up, so a flexible energy
    collapses (every answer gets low energy).

    p: energies of the correct answers, any shape. reduction: "mean" (default), "sum" or
    "none" (p itself).
    """
    p = _check_energy("p", p)
    _check_reduction(reduction)
    return _reduce(p, reduction)


def perceptron_loss(
    E: Tensor, target: Tensor, reduction: str = "mean", *, check_target: bool | None = None
) -> Tensor:
    """Perceptron loss: E[target] − min_k E[k] >= 0 (zero margin).

    E: (B, K) energies, K >= 2, low = good; target: (B,) integer labels in [0, K).
    reduction: "mean" (default), "sum" or "none" (one loss per sample, (B,)).
    check_target: whether to check that target lies in [0, K): None (default) checks on the
    CPU only, where it costs no device sync; True or False force it (see the module docstring).
    """
    E, target = _check_candidates(E, target, check_target)
    _check_reduction(reduction)
    return _reduce(_pick(E, target) - E.amin(dim=1), reduction)


def hinge_loss(p: Tensor, n: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Hinge loss: max(0, margin + p − n). Zero once n exceeds p by the margin.

    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p (no broadcasting). margin: finite, > 0.
    reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    check_positive("margin", margin)
    _check_reduction(reduction)
    return _reduce(F.relu(margin + p - n), reduction)


def log_loss(p: Tensor, n: Tensor, reduction: str = "mean") -> Tensor:
    """Log loss (soft hinge): log(1 + exp(p − n)) = softplus(p − n), stable for any p − n.

    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p. reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    _check_reduction(reduction)
    return _reduce(F.softplus(p - n), reduction)


def lvq2_loss(p: Tensor, n: Tensor, cap: float = 1.0, reduction: str = "mean") -> Tensor:
    """LVQ2 loss: min(cap, max(0, p − n)). Zero margin; saturates at ``cap`` for bad mistakes.

    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p. cap: finite, > 0. reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    check_positive("cap", cap)
    _check_reduction(reduction)
    return _reduce((p - n).clamp(min=0.0, max=cap), reduction)


def mce_loss(p: Tensor, n: Tensor, reduction: str = "mean") -> Tensor:
    """Minimum classification error loss: sigmoid(p − n), a smooth count of mistakes in (0, 1).

    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p. reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    _check_reduction(reduction)
    return _reduce(torch.sigmoid(p - n), reduction)


def square_square_loss(
    p: Tensor, n: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Square-square loss: p² + max(0, margin − n)².

    A PLUS: the lecture notes print a minus, which would push the wrong answer's energy down.
    Meant for non-negative energies: it drives p to 0 and n above ``margin``.
    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p. margin: finite, > 0. reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    check_positive("margin", margin)
    _check_reduction(reduction)
    return _reduce(p.square() + F.relu(margin - n).square(), reduction)


def square_exp_loss(p: Tensor, n: Tensor, beta: float = 1.0, reduction: str = "mean") -> Tensor:
    """Square-exponential loss: p² + beta·exp(−n). Meant for non-negative energies; for n below
    about −88 (float32) the value is truly beyond float range and comes out inf.

    p: energies of the correct answers; n: energies of the most offending wrong answers, same
    shape as p. beta: finite, > 0. reduction: "mean" (default), "sum" or "none" (one loss per element, shaped like p).
    """
    p, n = _check_pair(p, n)
    check_positive("beta", beta)
    _check_reduction(reduction)
    return _reduce(p.square() + beta * torch.exp(-n), reduction)


def nll_loss(
    E: Tensor,
    target: Tensor,
    beta: float = 1.0,
    reduction: str = "mean",
    *,
    check_target: bool | None = None,
) -> Tensor:
    """Takes ENERGIES (low = good), NOT the log-probabilities of torch's ``F.nll_loss``.

    Negative log-likelihood (MMI) loss: E[target] + (1/beta)·logsumexp_k(−beta·E[k]), the
    negative log of the Gibbs probability P(target) = softmax(−beta·E)[target], divided by
    beta; it tends to the perceptron loss as beta → ∞. Passing log-probabilities (as to torch's
    function) would reward the WRONG labels. Computed as
    ``cross_entropy(−beta·E, target) / beta``: stable for |E| up to 1e4 and beyond, with finite
    gradients, at the speed of torch's fused kernel.

    E: (B, K) energies, K >= 2, low = good; target: (B,) integer labels in [0, K).
    beta: the inverse temperature, finite, > 0. reduction: "mean" (default), "sum" or "none" (one loss per sample, (B,)).
    check_target: whether to check that target lies in [0, K): None (default) checks on the
    CPU only, where it costs no device sync; True or False force it (see the module docstring).

    >>> import torch
    >>> E = torch.tensor([[0.0, 3.0]])  # label 0 has the lower energy: P(0) = 1/(1 + e⁻³)
    >>> nll_loss(E, torch.tensor([0]))  # −log P(0) = log(1 + e⁻³)
    tensor(0.0486)
    """
    E, target = _check_candidates(E, target, check_target)
    check_positive("beta", beta)
    _check_reduction(reduction)
    if beta == 1:
        return F.cross_entropy(E.neg(), target, reduction=reduction)
    return F.cross_entropy(E * -beta, target, reduction=reduction) / beta


def mee_loss(
    E: Tensor,
    target: Tensor,
    beta: float = 1.0,
    reduction: str = "mean",
    *,
    check_target: bool | None = None,
) -> Tensor:
    """Minimum empirical error loss: 1 − softmax(−beta·E)[target], in [0, 1).

    The expected 0/1 error under the Gibbs distribution; it tends to the 0/1 loss of the argmin
    as beta → ∞.

    E: (B, K) energies, K >= 2, low = good; target: (B,) integer labels in [0, K).
    beta: the inverse temperature, finite, > 0. reduction: "mean" (default), "sum" or "none" (one loss per sample, (B,)).
    check_target: whether to check that target lies in [0, K): None (default) checks on the
    CPU only, where it costs no device sync; True or False force it (see the module docstring).
    """
    E, target = _check_candidates(E, target, check_target)
    check_positive("beta", beta)
    _check_reduction(reduction)
    log_prob = -F.cross_entropy(E * -beta, target, reduction="none")  # log softmax(−βE)[target]
    return _reduce(-torch.expm1(log_prob), reduction)  # 1 − P, accurate when P ≈ 1


def contrastive_loss(
    d: Tensor,
    same: Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    *,
    check_same: bool | None = None,
) -> Tensor:
    """Contrastive loss (Hadsell, Chopra & LeCun 2006): ½d² for matching pairs and
    ½·max(0, margin − d)² for non-matching ones. Both terms are squared, so the gradient is
    finite (and zero) at d = 0.

    d: distances (energies) of pairs, any shape. same: same shape, a tensor or array-like of
    labels: bool (True = matching pair), integer 0/1 labels (1 = matching), or floating weights in
    [0, 1] (1 = matching) that mix the two terms. A weight outside [0, 1] would make the loss
    negative, so integer and floating ``same`` are checked to lie in {0, 1} / [0, 1] (NaN refused)
    where that costs no device sync: on the CPU, not under torch.compile (``check_same``: see the
    module docstring). On accelerators pass bool labels, which need no check.
    margin: finite, > 0, the distance non-matching pairs are pushed beyond.
    reduction: "mean" (default), "sum" or "none" (one loss per pair, shaped like d).
    """
    d = _check_energy("d", d)
    same = _as_labels("same", same)
    if same.shape != d.shape:
        raise ValueError(
            f"same must have the same shape as d (no broadcasting), got same "
            f"{tuple(same.shape)} and d {tuple(d.shape)}"
        )
    if same.is_complex():
        raise ValueError(f"same must be bool, 0/1 or weights in [0, 1], got {same.dtype}")
    check_positive("margin", margin)
    _check_reduction(reduction)
    is_labels = not same.is_floating_point()
    if same.dtype != torch.bool and _value_check(check_same, same, "check_same") and same.numel():
        if is_labels:
            bad = (same != 0) & (same != 1)
            expected = "integer labels in {0, 1}"
        else:
            bad = ~((same >= 0) & (same <= 1))  # NaN is bad too
            expected = "floating weights in [0, 1]"
        if bool(bad.any()):
            raise ValueError(
                f"same must hold {expected} (1 = matching pair), got {int(bad.sum())} value(s) "
                f"outside, e.g. {same[bad].flatten()[0].item()!r}"
            )
    pull = 0.5 * d.square()
    push = 0.5 * F.relu(margin - d).square()
    if is_labels:
        values = torch.where(same != 0, pull, push)
    else:
        values = same * pull + (1 - same) * push
    return _reduce(values, reduction)


def contrastive_divergence_loss(e_data: Tensor, e_model: Tensor, alpha: float = 0.0) -> Tensor:
    """The sampling-based EBM loss: mean(e_data) − mean(e_model) + alpha·(mean(e_data²) + mean(e_model²)).

    Pushes the energy of data down and of model samples (e.g. from Langevin dynamics) up; the
    ``alpha`` term keeps energies near zero (Du & Mordatch 2019); alpha: finite, >= 0.
    e_data: (B,) energies of data, e_model: (M,) energies of model samples; the batch sizes may
    differ. Returns a scalar. Detach the model samples before computing
    ``e_model`` so no gradient flows through the sampler.
    """
    e_data = _check_energy("e_data", e_data)
    e_model = _check_energy("e_model", e_model)
    for name, e in (("e_data", e_data), ("e_model", e_model)):
        if e.ndim != 1 or e.shape[0] == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D tensor of energies, got {tuple(e.shape)}"
            )
    _check_alpha(alpha)
    loss = e_data.mean() - e_model.mean()
    if alpha:
        loss = loss + alpha * (e_data.square().mean() + e_model.square().mean())
    return loss


def nce_loss(
    e_data: Tensor,
    e_noise: Tensor,
    log_q_data: Tensor,
    log_q_noise: Tensor,
    reduction: str = "mean",
) -> Tensor:
    """Noise-contrastive estimation (Gutmann & Hyvärinen 2010): logistic regression of data
    against noise, with the model's log-density −E as the classifier's log-odds.

    The model is p_m(x) = exp(−E(x)): the energy must include a learnable log-normaliser (e.g.
    E(x) = f(x) + c with a parameter c), which NCE fits along with the rest, so that exp(−E)
    becomes a normalised density at the optimum; the loss does not add one. With ν =
    len(e_noise) / len(e_data) noise samples per data point and G(x) = −E(x) − log q(x), the
    posterior that x is data is σ(G(x) − log ν), and the per-sample losses are
        data:  softplus(−(G(x) − log ν)) = −log σ(G − log ν),
        noise: softplus(G(y) − log ν)    = −log(1 − σ(G − log ν)).
    e_data: (N,) energies of data points (low = likely), N >= 1; e_noise: (M,) energies of noise
    samples y ~ q, M >= 1; log_q_data, log_q_noise: the noise density log q at the same points,
    shaped like e_data and e_noise (q must be normalised and easy to sample, e.g. a Gaussian fitted
    to the data). Tensors or array-likes; NaN propagates (no host sync).
    reduction: "none" returns the N + M per-sample losses (data first), "sum" their sum, "mean"
    (default) their mean; Gutmann & Hyvärinen's J_T (normalised by N) is (1 + ν) times the mean.

    >>> import torch
    >>> zero = torch.zeros(2)  # G = 0 everywhere, ν = 1: every sample at σ(0) = ½
    >>> nce_loss(zero, zero, zero, zero)  # log 2
    tensor(0.6931)
    """
    _check_reduction(reduction)
    names = ("e_data", "e_noise", "log_q_data", "log_q_noise")
    values = [
        _check_energy(name, value)
        for name, value in zip(names, (e_data, e_noise, log_q_data, log_q_noise))
    ]
    for name, value in zip(names, values):
        if value.ndim != 1 or value.shape[0] == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}"
            )
    e_data, e_noise, log_q_data, log_q_noise = values
    check_same_shape(e_data=e_data, log_q_data=log_q_data)
    check_same_shape(e_noise=e_noise, log_q_noise=log_q_noise)
    log_nu = float(np.log(e_noise.shape[0] / e_data.shape[0]))
    logit_data = -e_data - log_q_data - log_nu  # log-odds that a data point is data
    logit_noise = -e_noise - log_q_noise - log_nu
    values = torch.cat([F.softplus(-logit_data), F.softplus(logit_noise.to(logit_data.dtype))])
    return _reduce(values, reduction)


def _flip_energies(energy, x: Tensor) -> tuple[Tensor, Tensor]:
    """E(x), (B,), and E(x^{-i}) for every single-bit flip x^{-i} of x, (B, d)."""
    if not callable(energy):
        raise ValueError(
            f"energy must be callable (B, d) -> (B,) or (B, 1), got {type(energy).__name__}"
        )
    x = as_float_tensor("x", x, ndim=2, finite=False, dtype=module_dtype(energy))
    B, d = x.shape
    if B < 1 or d < 1:
        raise ValueError(f"x must have shape (B, d) with B, d >= 1, got {tuple(x.shape)}")
    eye = torch.eye(d, dtype=torch.bool, device=x.device)
    flipped = torch.where(eye, 1 - x.unsqueeze(2), x.unsqueeze(1))  # (B, d, d): row i flips bit i
    e = per_sample_energies("energy", energy(x), B)
    e_flip = per_sample_energies("energy", energy(flipped.reshape(B * d, d)), B * d)
    return e, e_flip.view(B, d)


def ratio_matching_loss(energy, x: Tensor, reduction: str = "mean") -> Tensor:
    """Ratio matching (Hyvärinen 2007) for binary data: Σ_i σ(E(x) − E(x^{-i}))² per sample.

    x^{-i} is x with bit i flipped. With p ∝ exp(−E), σ(E(x) − E(x^{-i})) =
    p(x^{-i}) / (p(x) + p(x^{-i})), the model's probability of the flipped state within the pair,
    so the loss pushes E(x) below its d neighbours' energies without the partition function. In
    expectation over data, the pair (x, x^{-i}) contributes p_d(x)s² + p_d(x^{-i})(1 − s)² with
    s that probability, minimised at s = p_d(x^{-i}) / (p_d(x) + p_d(x^{-i})): the model's ratios
    equal the data's, so a model able to represent p_d is consistent (for p_d with full support;
    states of zero data probability are pushed to +∞ energy).
    energy: callable (B, d) -> (B,) (or (B, 1), squeezed), low = likely (an ``ebm.Energy`` or any
    function); it is called on x and on the B·d flipped copies. x: (B, d) binary data in {0, 1};
    a tensor or array-like, int/bool promoted, cast to an ``nn.Module`` energy's dtype. As a loss
    forward pass it does not read x's values (no host sync; NaN propagates): a value other than
    0 or 1 is flipped to 1 − value and gives a number that is not ratio matching, so pass binary x.
    reduction: "mean" (default), "sum" or "none" (one loss per sample, (B,)).

    >>> import torch
    >>> flat = lambda x: torch.zeros(x.shape[0])  # every state equally likely: σ(0)² = ¼ per bit
    >>> ratio_matching_loss(flat, torch.tensor([[0, 1, 1], [1, 0, 0]]))
    tensor(0.7500)
    """
    _check_reduction(reduction)
    e, e_flip = _flip_energies(energy, x)
    return _reduce(torch.sigmoid(e.unsqueeze(1) - e_flip).square().sum(1), reduction)


def mpf_loss(energy, x: Tensor, reduction: str = "mean") -> Tensor:
    """Minimum probability flow (Sohl-Dickstein, Battaglino & DeWeese 2011) for binary data, with
    single-bit-flip connectivity: Σ_i exp((E(x) − E(x^{-i})) / 2) per sample.

    x^{-i} is x with bit i flipped. The loss is the initial flow of probability out of the data
    under dynamics that move between neighbouring states at rate exp((E(x) − E(x'))/2); it is
    small when every data point has lower energy than its d neighbours. The paper sums over the
    neighbours outside the data set (no term at all once the data visit every state); this
    sums over all d neighbours, the form consistent for any data distribution: in expectation the pair (x, x^{-i}) contributes p_d(x)·e^u +
    p_d(x^{-i})·e^{−u}, u = (E(x) − E(x^{-i}))/2, minimised at p_m(x)/p_m(x^{-i}) =
    p_d(x)/p_d(x^{-i}). The paper's constant factor ε (a learning-rate scale) is left out.
    energy: callable (B, d) -> (B,) (or (B, 1), squeezed), low = likely; it is called on x and on
    the B·d flipped copies. x: (B, d) binary data in {0, 1}; a tensor or array-like, int/bool
    promoted, cast to an ``nn.Module`` energy's dtype. As a loss forward pass it does not read
    x's values (no host sync; NaN propagates): a value other than 0 or 1 is flipped to 1 − value
    and gives a number that is not MPF, so pass binary x.
    reduction: "mean" (default), "sum" or "none" (one loss per sample, (B,)).

    >>> import torch
    >>> flat = lambda x: torch.zeros(x.shape[0])  # no energy differences: e⁰ = 1 per bit
    >>> mpf_loss(flat, torch.tensor([[0, 1, 1], [1, 0, 0]]))
    tensor(3.)
    """
    _check_reduction(reduction)
    e, e_flip = _flip_energies(energy, x)
    return _reduce(torch.exp(0.5 * (e.unsqueeze(1) - e_flip)).sum(1), reduction)


# ---- thin modules holding the hyper-parameters --------------------------------------------------


class _Loss(nn.Module):
    """Stores ``reduction`` (and, in subclasses, the hyper-parameters named in ``_shown``)."""

    _shown: tuple[str, ...] = ()

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in (*self._shown, "reduction"))


class EnergyLoss(_Loss):
    """``energy_loss`` as a module: forward(p) -> loss.

    reduction: "mean" (default), "sum" or "none".
    """

    def forward(self, p: Tensor) -> Tensor:
        """p: energies of the correct answers, any shape (low = good) -> the reduced loss."""
        return energy_loss(p, self.reduction)


class PerceptronLoss(_Loss):
    """``perceptron_loss`` as a module: forward(E, target) -> loss.

    reduction: "mean" (default), "sum" or "none" ((B,) losses).
    """

    def forward(self, E: Tensor, target: Tensor) -> Tensor:
        """E: (B, K) energies (low = good); target: (B,) integer labels -> the reduced loss."""
        return perceptron_loss(E, target, self.reduction)


class HingeLoss(_Loss):
    """``hinge_loss`` as a module: forward(p, n) -> max(0, margin + p − n), reduced.

    margin: finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("margin",)

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive("margin", margin)

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return hinge_loss(p, n, self.margin, self.reduction)


class LogLoss(_Loss):
    """``log_loss`` as a module: forward(p, n) -> softplus(p − n), reduced.

    reduction: "mean" (default), "sum" or "none".
    """

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return log_loss(p, n, self.reduction)


class LVQ2Loss(_Loss):
    """``lvq2_loss`` as a module: forward(p, n) -> min(cap, max(0, p − n)), reduced.

    cap: finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("cap",)

    def __init__(self, cap: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.cap = check_positive("cap", cap)

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return lvq2_loss(p, n, self.cap, self.reduction)


class MCELoss(_Loss):
    """``mce_loss`` as a module: forward(p, n) -> sigmoid(p − n), reduced.

    reduction: "mean" (default), "sum" or "none".
    """

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return mce_loss(p, n, self.reduction)


class SquareSquareLoss(_Loss):
    """``square_square_loss`` as a module: forward(p, n) -> p² + max(0, margin − n)², reduced.

    margin: finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("margin",)

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive("margin", margin)

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return square_square_loss(p, n, self.margin, self.reduction)


class SquareExpLoss(_Loss):
    """``square_exp_loss`` as a module: forward(p, n) -> p² + beta·exp(−n), reduced.

    beta: finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("beta",)

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.beta = check_positive("beta", beta)

    def forward(self, p: Tensor, n: Tensor) -> Tensor:
        """p: correct energies; n: most offending wrong energies, same shape -> the loss."""
        return square_exp_loss(p, n, self.beta, self.reduction)


class NLLLoss(_Loss):
    """Takes ENERGIES (low = good), NOT the log-probabilities of ``torch.nn.NLLLoss``.

    ``nll_loss`` as a module: forward(E, target) -> E[target] + (1/beta)·logsumexp(−beta·E),
    reduced. For logits f, ``NLLLoss()(-f, y)`` equals ``torch.nn.CrossEntropyLoss()(f, y)``.
    beta: the inverse temperature, finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("beta",)

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.beta = check_positive("beta", beta)

    def forward(self, E: Tensor, target: Tensor) -> Tensor:
        """E: (B, K) ENERGIES (low = good, not log-probabilities); target: (B,) integer labels
        -> the reduced loss."""
        return nll_loss(E, target, self.beta, self.reduction)


class MEELoss(_Loss):
    """``mee_loss`` as a module: forward(E, target) -> 1 − softmax(−beta·E)[target], reduced.

    beta: the inverse temperature, finite, > 0; reduction: "mean" (default), "sum" or "none".
    """

    _shown = ("beta",)

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.beta = check_positive("beta", beta)

    def forward(self, E: Tensor, target: Tensor) -> Tensor:
        """E: (B, K) energies (low = good); target: (B,) integer labels -> the reduced loss."""
        return mee_loss(E, target, self.beta, self.reduction)


class ContrastiveLoss(_Loss):
    """``contrastive_loss`` as a module: forward(d, same) -> loss.

    margin: finite, > 0, the distance non-matching pairs are pushed beyond; reduction: "mean"
    (default), "sum" or "none".
    """

    _shown = ("margin",)

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive("margin", margin)

    def forward(self, d: Tensor, same: Tensor) -> Tensor:
        """d: pair distances (energies), any shape; same: like d, bool / 0-1 labels or weights
        in [0, 1] (1 = matching pair) -> the reduced loss."""
        return contrastive_loss(d, same, self.margin, self.reduction)


class ContrastiveDivergenceLoss(nn.Module):
    """``contrastive_divergence_loss`` as a module: forward(e_data, e_model) -> scalar loss.

    alpha: the weight of the energy-magnitude penalty, finite, >= 0 (0: none).

    >>> import torch
    >>> loss = ContrastiveDivergenceLoss(alpha=0.0)
    >>> loss(torch.tensor([-1.0, -3.0]), torch.tensor([2.0]))  # mean(e_data) − mean(e_model)
    tensor(-4.)
    """

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = _check_alpha(alpha)

    def extra_repr(self) -> str:
        """``alpha=...``, shown in the module's repr."""
        return f"alpha={self.alpha!r}"

    def forward(self, e_data: Tensor, e_model: Tensor) -> Tensor:
        """e_data: (B,) energies of data; e_model: (M,) energies of (detached) model samples
        -> the scalar loss, to minimise (pushes data energies down, sample energies up)."""
        return contrastive_divergence_loss(e_data, e_model, self.alpha)


class NCELoss(_Loss):
    """``nce_loss`` as a module: forward(e_data, e_noise, log_q_data, log_q_noise) -> loss.

    reduction: "mean" (default), "sum" or "none" (the N + M per-sample losses, data first).

    >>> import torch
    >>> loss = NCELoss()
    >>> zero = torch.zeros(3)
    >>> loss(zero, zero, zero, zero)  # the classifier is at chance: log 2
    tensor(0.6931)
    """

    def forward(
        self, e_data: Tensor, e_noise: Tensor, log_q_data: Tensor, log_q_noise: Tensor
    ) -> Tensor:
        """e_data: (N,) energies of data (low = likely, including the learnable log-normaliser);
        e_noise: (M,) energies of noise samples; log_q_data, log_q_noise: the noise log-density
        at the same points, shaped alike -> the reduced NCE loss."""
        return nce_loss(e_data, e_noise, log_q_data, log_q_noise, self.reduction)


class RatioMatchingLoss(_Loss):
    """``ratio_matching_loss`` as a module: forward(energy, x) -> Σ_i σ(E(x) − E(x^{-i}))², reduced.

    reduction: "mean" (default), "sum" or "none" ((B,) losses).
    """

    def forward(self, energy, x: Tensor) -> Tensor:
        """energy: callable (B, d) -> (B,), low = likely; x: (B, d) binary data in {0, 1}, values
        not checked -> the reduced ratio-matching loss."""
        return ratio_matching_loss(energy, x, self.reduction)


class MPFLoss(_Loss):
    """``mpf_loss`` as a module: forward(energy, x) -> Σ_i exp((E(x) − E(x^{-i}))/2), reduced.

    reduction: "mean" (default), "sum" or "none" ((B,) losses).
    """

    def forward(self, energy, x: Tensor) -> Tensor:
        """energy: callable (B, d) -> (B,), low = likely; x: (B, d) binary data in {0, 1}, values
        not checked -> the reduced minimum-probability-flow loss."""
        return mpf_loss(energy, x, self.reduction)
