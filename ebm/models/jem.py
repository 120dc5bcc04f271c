"""Joint energy-based models (Grathwohl et al. 2020): a classifier is secretly an energy.

A classifier's logits f(x) (B, K) define p(y|x) = softmax(f(x))[y] as usual, and also a joint
energy E(x, y) = −f(x)[y], whose marginal over y is the energy of the input alone,

    E(x) = −log Σ_y exp(f(x)[y])      (low = likely).

JEM trains both readings of the one network: cross-entropy for p(y|x), plus the maximum-likelihood
gradient of p(x) = exp(−E(x))/Z, whose intractable term is estimated with samples of the model
from persistent SGLD chains kept in a replay buffer (the chains of ``ebm.models.EBM``:
``ReplayBuffer.advance`` with ``ebm.sampling.langevin``). The SGLD settings default to the
paper's: step size 1, noise std 0.01, 20 steps, a 10 000-slot buffer re-initialised from uniform
noise with probability 0.05; Adam at lr 1e-4. This is "SGLD" as JEM runs it: the noise is far
below the √(2·step) that would sample exp(−E) exactly, so the chains sample a colder density.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebm._checks import (
    as_index_tensor,
    as_module_input,
    check_betas,
    check_choice,
    check_finite,
    check_int,
    check_nonempty,
    check_positive,
    check_real,
    check_shape,
)
from ebm.losses import contrastive_divergence_loss
from ebm.models._batch import batch_labels, labelled_batch
from ebm.sampling import ReplayBuffer, langevin
from ebm.sampling._common import check_clamp

__all__ = ["JEM"]


class _Energy(nn.Module):
    """E(x) = −logsumexp_y f(x)[y], or E(x, y) = −f(x)[y] for fixed labels y (n,): a module, so
    the samplers freeze its weights and read its dtype. Built per call, never stored."""

    def __init__(self, classifier: nn.Module, y: Tensor | None = None):
        super().__init__()
        self.classifier, self.y = classifier, y

    def forward(self, x: Tensor) -> Tensor:
        logits = self.classifier(x)
        if self.y is None:
            return -torch.logsumexp(logits, dim=1)
        return -logits.gather(1, self.y.view(-1, 1)).squeeze(1)


class JEM(nn.Module):
    """A classifier trained as a joint energy-based model of (x, y) through the Trainer.

    classifier: an ``nn.Module`` mapping inputs (B, *data_shape) to logits (B, n_classes).
        Avoid batch normalisation: its batch statistics would mix data and SGLD samples.
        Dropout is switched off while the chains run (they need one deterministic energy)
        and left as the module's mode decides for the loss's forward passes.
    data_shape: one input's shape, e.g. (1, 8, 8). n_classes: the number of classes K >= 2.
    generative_weight: the weight of the generative term (finite, >= 0; 0 trains a plain
        classifier, as a control).
    n_steps, step_size, noise_scale, clamp: the SGLD chains (``ebm.sampling.langevin``); the
        paper's 20, 1.0 and 0.01 by default, no clamp.
    buffer_size, reinit_prob, init_noise, init_scale: the replay buffer of persistent chains
        (``ebm.sampling.ReplayBuffer``): 10 000 slots, re-drawn with probability 0.05 from
        uniform noise on [−1, 1] by default (inputs scaled to [−1, 1] match it).
    alpha: weight of the energy L2 penalty α·(mean E(x_data)² + mean E(x_sample)²), which keeps
        the energies near zero (finite, >= 0; 0, the paper's setting, by default). The first
        thing to raise when the energies drift off and training diverges.
    data_noise: the std of Gaussian noise added to every training input, for both terms (finite,
        >= 0; 0: none). The paper adds 0.03 on [−1, 1] images: it smooths the data density the
        energy has to fit. Training draws it from torch's global RNG; evaluation never adds it.
    lr, betas, weight_decay: Adam's settings (the paper's lr 1e-4, β = (0.9, 0.999), no decay).
    warmup_steps: linear learning-rate warm-up over this many optimiser steps (0: none; the
        paper warms up over 1000), an int >= 0.
    seed: seeds the replay buffer's initial fill (None: fresh entropy). Training draws its
        chains' randomness from torch's global RNG, which ``Trainer(seed=...)`` seeds;
        ``sample`` takes a ``generator``.
    Every hyper-parameter is validated here, by name.

    Public data-taking methods (``energy``, ``logits``, ``predict_proba``) accept tensors or
    array-likes (B, *data_shape), cast floating data to the classifier's parameter dtype, and
    reject NaN/inf with a ValueError naming the argument. Sign convention: low energy = likely.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> model = JEM(net, data_shape=(4,), n_classes=3, buffer_size=32, seed=0)
    >>> x = torch.randn(5, 4)
    >>> bool(torch.allclose(model.energy(x), -torch.logsumexp(model.logits(x), 1)))
    True
    >>> model.sample(2, y=torch.tensor([0, 2]), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        classifier: nn.Module,
        data_shape: Sequence[int],
        n_classes: int,
        generative_weight: float = 1.0,
        n_steps: int = 20,
        step_size: float = 1.0,
        noise_scale: float = 0.01,
        clamp: tuple[float, float] | None = None,
        buffer_size: int = 10000,
        reinit_prob: float = 0.05,
        init_noise: str = "uniform",
        init_scale: float = 1.0,
        alpha: float = 0.0,
        data_noise: float = 0.0,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        seed: int | None = None,
    ):
        super().__init__()
        if not isinstance(classifier, nn.Module):
            raise ValueError(f"classifier must be an nn.Module, got {type(classifier).__name__}")
        self.classifier = classifier
        data_shape = check_shape("data_shape", data_shape)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.generative_weight = float(check_real("generative_weight", generative_weight, 0.0))
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.step_size = float(check_positive("step_size", step_size))
        self.noise_scale = float(check_real("noise_scale", noise_scale, 0.0))
        self.clamp = check_clamp(clamp)
        check_int("buffer_size", buffer_size, minimum=1)
        check_real("reinit_prob", reinit_prob, 0.0, 1.0)
        check_choice("init_noise", init_noise, ReplayBuffer.NOISE)
        check_positive("init_scale", init_scale)
        self.alpha = float(check_real("alpha", alpha, 0.0))
        self.data_noise = float(check_real("data_noise", data_noise, 0.0))
        self.lr = float(check_positive("lr", lr))
        self.betas = check_betas("betas", betas)
        self.weight_decay = float(check_real("weight_decay", weight_decay, 0.0))
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        self.buffer = ReplayBuffer(
            buffer_size, data_shape, reinit_prob, noise=init_noise, scale=init_scale, seed=seed
        )
        self.data_shape = data_shape

    # ---- the two readings of the logits ----------------------------------------------------
    def _input(self, name: str, x: object) -> Tensor:
        x = as_module_input(name, x, self.classifier)
        if tuple(x.shape[1:]) != self.data_shape or x.ndim != len(self.data_shape) + 1:
            raise ValueError(
                f"{name} must have shape (B, {', '.join(map(str, self.data_shape))}), the "
                f"model's data_shape, got {tuple(x.shape)}"
            )
        return check_finite(name, check_nonempty(name, x))

    def _logits(self, x: Tensor) -> Tensor:
        logits = self.classifier(x)
        if logits.ndim != 2 or logits.shape[1] != self.n_classes:
            raise ValueError(
                f"classifier must return logits (B, n_classes={self.n_classes}), got "
                f"{tuple(logits.shape)}"
            )
        return logits

    def logits(self, x: Tensor) -> Tensor:
        """The classifier's logits f(x): (B, n_classes), for x (B, *data_shape).

        x: a tensor or array-like, cast to the classifier's dtype; NaN/inf are refused.
        Runs in the module's current mode (call ``eval()`` for deterministic dropout).
        """
        return self._logits(self._input("x", x))

    def energy(self, x: Tensor) -> Tensor:
        """E(x) = −logsumexp_y f(x)[y], (B,), for x (B, *data_shape): low = likely under p(x).

        x: a tensor or array-like, cast to the classifier's dtype; NaN/inf are refused.
        The OOD score of JEM is −E(x) (high = in distribution).
        """
        return -torch.logsumexp(self.logits(x), dim=1)

    def predict_proba(self, x: Tensor) -> Tensor:
        """p(y|x) = softmax(f(x)): (B, n_classes) rows summing to 1, for x (B, *data_shape).

        x: a tensor or array-like, cast to the classifier's dtype; NaN/inf are refused.
        """
        return torch.softmax(self.logits(x), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """The logits f(x) (B, n_classes) of x (B, *data_shape), unchecked (NaN propagates).

        x: a tensor or array-like (integers promoted), cast to the classifier's dtype.
        """
        return self.classifier(as_module_input("x", x, self.classifier))

    # ---- chains -------------------------------------------------------------------------
    def _chains(self, x0: Tensor, y: Tensor | None, n_steps: int, generator) -> Tensor:
        """SGLD from x0 (n, *data_shape) on E(x) (y None) or E(x, y), dropout off; detached."""
        was_training = self.classifier.training
        self.classifier.eval()
        try:
            return langevin(
                _Energy(self.classifier, y),
                x0,
                n_steps,
                self.step_size,
                noise_scale=self.noise_scale,
                clamp=self.clamp,
                generator=generator,
            )
        finally:
            self.classifier.train(was_training)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        y: Tensor | int | None = None,
        n_steps: int | None = None,
        from_buffer: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """n samples (n, *data_shape) by SGLD: of p(x) ∝ exp(−E(x)) (y None) or of
        p(x|y) ∝ exp(f(x)[y]) (class-conditional, E(x, y) = −f(x)[y]).

        n: an int >= 1 (<= buffer_size with ``from_buffer``). y: None, an int class index (for
        all n samples), or labels (n,) in [0, n_classes) (a tensor or array-like of integers). n_steps: an int >= 0 (default the model's n_steps; from
        noise, a few hundred give recognisable samples). from_buffer: start from the training
        chains' buffer states (their end states are not pushed back; slots re-drawn with
        ``reinit_prob`` are written, as in training) instead of fresh noise. generator: the
        source of every draw (start, Langevin noise; None: torch's global RNG), on the model's
        device: a seeded generator gives the same samples on every call.
        """
        check_choice("from_buffer", from_buffer, (False, True))
        check_int("n", n, minimum=1, maximum=self.buffer.capacity if from_buffer else None)
        n_steps = self.n_steps if n_steps is None else check_int("n_steps", n_steps, minimum=0)
        labels = None
        if y is not None:
            device = self.buffer.samples.device
            if isinstance(y, int) and not isinstance(y, bool):
                y = torch.full((n,), y, dtype=torch.int64)
            labels = as_index_tensor("y", y, ndim=1, high=self.n_classes, device=device)
            if labels.shape != (n,):
                raise ValueError(
                    f"y must be an int class index or labels of shape (n,) = ({n},), got shape "
                    f"{tuple(labels.shape)}"
                )
        if from_buffer:
            start = self.buffer.sample(n, generator)[0]
        else:
            start = self.buffer.draw_noise(n, generator)
        return self._chains(start, labels, n_steps, generator)

    # ---- the Trainer protocol ---------------------------------------------------------
    def _batch(self, batch) -> tuple[Tensor, Tensor]:
        """(x (B, *data_shape) in the classifier's dtype, y (B,) int64) from batch [x, y, ...].

        Shapes and dtypes only for tensors (no host sync); array-like labels are range-checked
        on the host (they are there already)."""
        x, y = labelled_batch(
            batch, "labelled data [x (B, *data_shape), y (B,), ...]", allow_extra=True
        )
        x = as_module_input("batch[0]", x, self.classifier)
        shape = tuple(self.buffer.shape)
        if x.ndim == 0 or tuple(x.shape[1:]) != shape or len(x) == 0:
            raise ValueError(
                f"batch[0] (the inputs x) must have shape (B, {', '.join(map(str, shape))}) with "
                f"B >= 1, the model's data_shape, got {tuple(x.shape)}"
            )
        return x, batch_labels(y, x.device, self.n_classes, shape=(len(x),))

    def training_step(self, batch) -> dict[str, Tensor]:
        """Cross-entropy plus the generative term, for batch [x (B, *data_shape), y (B,), ...].

        x: a tensor or array-like, cast to the classifier's dtype (ints promoted); y: integer
        class labels (tensor or array-like; array-likes are range-checked). An unlabelled batch
        raises a ValueError naming ``batch``.

        loss = CE(f(x), y) + generative_weight · [mean E(x) − mean E(x̃) + α·(mean E(x)² +
        mean E(x̃)²)], x̃ the end states of min(B, buffer_size) persistent SGLD chains
        (``ReplayBuffer.advance``; global RNG), x with ``data_noise`` added (global RNG, drawn
        before the chains run). Returns {"loss", "ce", "accuracy", "e_data", "e_model"} (e_data
        below e_model: the energy is lower on data than on the samples).
        """
        x, y = self._batch(batch)
        if self.data_noise:
            x = x + self.data_noise * torch.randn_like(x)
        logits = self.classifier(x)
        ce = F.cross_entropy(logits, y)
        e_data = -torch.logsumexp(logits, dim=1)
        terms = {"ce": ce.detach(), "accuracy": (logits.argmax(1) == y).float().mean()}
        if self.generative_weight == 0:
            return {"loss": ce, **terms, "e_data": e_data.detach().mean()}
        n = min(len(x), self.buffer.capacity)
        samples = self.buffer.advance(n, lambda x0: self._chains(x0, None, self.n_steps, None))
        e_model = -torch.logsumexp(self.classifier(samples.to(x.dtype)), dim=1)
        generative = contrastive_divergence_loss(e_data, e_model, self.alpha)
        return {
            "loss": ce + self.generative_weight * generative,
            **terms,
            "e_data": e_data.detach().mean(),
            "e_model": e_model.detach().mean(),
        }

    def validation_step(self, batch) -> dict[str, Tensor]:
        """{"loss": cross-entropy, "accuracy", "e_data"} on batch (x, y) (no sampling)."""
        x, y = self._batch(batch)
        logits = self.classifier(x)
        return {
            "loss": F.cross_entropy(logits, y),
            "accuracy": (logits.argmax(1) == y).float().mean(),
            "e_data": -torch.logsumexp(logits, dim=1).mean(),
        }

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        """Adam(lr, betas, weight_decay) on the classifier; with ``warmup_steps``, a dict with
        a per-step linear warm-up ``LambdaLR`` (the Trainer's format)."""
        optimizer = torch.optim.Adam(
            self.classifier.parameters(),
            lr=self.lr,
            betas=self.betas,
            weight_decay=self.weight_decay,
        )
        if not self.warmup_steps:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._warmup)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _warmup(self, step: int) -> float:
        """lr(step) / lr: linear from 1/warmup_steps to 1, then 1."""
        return min(1.0, (step + 1) / self.warmup_steps)
