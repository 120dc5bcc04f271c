"""SWAG, the SWA-Gaussian of Maddox et al. (2019): a Gaussian over all the weights of a net,
fitted to the SGD iterates θ₁ … θ_T collected along training.

First and second moments give the SWA mean θ̄ = (1/T) Σ θₜ and the diagonal variance
Σ_diag = diag((1/T) Σ θₜ² − θ̄²); the deviations Dₜ = θₜ − θ̄ₜ of the last K snapshots from the
running mean at the time (θ̄ₜ, the mean of θ₁ … θₜ) give a rank-K part Σ_lowrank = DᵀD/(K − 1),
D (K, P). A sample is θ = θ̄ + (1/√2) Σ_diag^{1/2} z₁ + (1/√(2(K − 1))) Dᵀ z₂, z₁ ~ N(0, I_P),
z₂ ~ N(0, I_K): its covariance is ½ (Σ_diag + Σ_lowrank). The snapshots come from a Trainer
callback (``SWAGCallback``), usually once per epoch after a burn-in, at a constant or cyclical
learning rate (the paper's setting; the callback does not change the schedule).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ebm._checks import as_float_tensor, check_generator, check_int, check_real
from ebm.bayes.prediction import Prediction
from ebm.train.callbacks import Callback

__all__ = ["SWAGCallback", "SWAG"]


def _flat(model: nn.Module) -> tuple[Tensor, list[list[int]]]:
    params = list(model.parameters())
    if not params:
        raise ValueError("model must have parameters, got a module without any")
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    return theta, [list(p.shape) for p in params]


class SWAGCallback(Callback):
    """Collects SWAG's moments and deviations from a training run (a ``Trainer`` callback).

    start_epoch: the first epoch (0-based) whose end is collected, an int >= 0.
    collect_every: collect at the end of every ``collect_every``-th epoch from ``start_epoch``
        on (epochs start_epoch, start_epoch + collect_every, ...), an int >= 1.
    max_rank: K, the number of most recent deviations kept (the rank of the low-rank part), an
        int >= 2.

    A snapshot is every parameter of the trained model, flattened in ``model.parameters()``
    order: (P,). State, in the parameters' dtype and on their device: ``n_collected`` (T),
    ``mean`` (P,) the SWA mean, ``sq_mean`` (P,) the mean of squares, ``deviations`` (k, P),
    k = min(T, K), oldest first. ``state_dict``/``load_state_dict`` carry them through the
    Trainer's checkpoints, so a resumed fit continues the collection. ``collect(model)`` adds
    a snapshot by hand (a custom training loop). Under DDP every rank collects the same
    (synchronised) weights.

    >>> import torch
    >>> from torch import nn
    >>> from ebm.bayes import Supervised
    >>> from ebm.train import Trainer
    >>> net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> swag = SWAGCallback(start_epoch=3, max_rank=4)
    >>> x = torch.linspace(-2, 2, 32)[:, None]
    >>> trainer = Trainer(max_epochs=8, batch_size=8, device="cpu", progress=False,
    ...                   log_every_n_steps=None, tensorboard=False, callbacks=[swag])
    >>> _ = trainer.fit(Supervised(net, lr=0.05), (x, x.sin()))
    >>> swag.n_collected, tuple(swag.deviations.shape)
    (5, (4, 25))
    >>> SWAG(net, swag).predict(x[:3], n_samples=4).samples.shape
    torch.Size([4, 3, 1])
    """

    def __init__(self, start_epoch: int = 0, collect_every: int = 1, max_rank: int = 20) -> None:
        self.start_epoch = check_int("start_epoch", start_epoch, minimum=0)
        self.collect_every = check_int("collect_every", collect_every, minimum=1)
        self.max_rank = check_int("max_rank", max_rank, minimum=2)
        self.n_collected = 0
        self.mean: Tensor | None = None
        self.sq_mean: Tensor | None = None
        self.deviations: Tensor | None = None
        self.shapes: list[list[int]] | None = None

    def collect(self, model: nn.Module) -> None:
        """Add the current parameters of ``model`` (an ``nn.Module``; the same parameter shapes
        at every call) as one snapshot."""
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        theta, shapes = _flat(model)
        if self.n_collected == 0:
            self.mean, self.sq_mean = theta.clone(), theta.square()
            self.deviations, self.shapes = theta.new_zeros((0, theta.numel())), shapes
        else:
            if shapes != self.shapes:
                raise ValueError(
                    f"model's parameter shapes {shapes} differ from the collected ones "
                    f"{self.shapes}"
                )
            n = self.n_collected
            self.mean = self.mean.to(theta)
            self.sq_mean = self.sq_mean.to(theta)
            self.mean = self.mean + (theta - self.mean) / (n + 1)
            self.sq_mean = self.sq_mean + (theta.square() - self.sq_mean) / (n + 1)
        deviation = (theta - self.mean)[None]  # from the updated running mean
        self.deviations = torch.cat([self.deviations.to(theta), deviation])[-self.max_rank :]
        self.n_collected += 1

    def on_epoch_end(self, trainer, model, metrics) -> None:
        """Collect ``model`` if the epoch that ended (``metrics["epoch"]``, 0-based) is on the
        schedule. trainer: the running Trainer (unused); model: the trained module; metrics:
        the epoch's history row."""
        epoch = int(metrics["epoch"])
        if epoch >= self.start_epoch and (epoch - self.start_epoch) % self.collect_every == 0:
            self.collect(model)

    def state_dict(self) -> dict:
        """``{"n_collected", "mean", "sq_mean", "deviations", "shapes"}`` (only
        ``n_collected`` before the first snapshot)."""
        if self.n_collected == 0:
            return {"n_collected": 0}
        return {
            "n_collected": self.n_collected,
            "mean": self.mean,
            "sq_mean": self.sq_mean,
            "deviations": self.deviations,
            "shapes": [list(s) for s in self.shapes],
        }

    def load_state_dict(self, state: dict) -> None:
        """Take back a ``state_dict`` (state: the dict); the tensors follow the model's device
        at the next snapshot."""
        self.n_collected = int(state["n_collected"])
        if self.n_collected == 0:
            self.mean = self.sq_mean = self.deviations = self.shapes = None
            return
        self.mean, self.sq_mean = state["mean"], state["sq_mean"]
        self.deviations = state["deviations"][-self.max_rank :]
        self.shapes = [list(s) for s in state["shapes"]]


class SWAG:
    """The SWAG posterior of ``model``'s weights, and its Monte Carlo predictive.

    model: the ``nn.Module`` the snapshots were taken from (or one with the same parameter
        shapes in the same ``parameters()`` order: the net inside a ``Supervised`` wrapper).
        It is never modified: each sample runs through ``torch.func.functional_call``.
    swag: a ``SWAGCallback`` with at least 2 snapshots, or its ``state_dict()``.
    noise_var: an observation-noise variance added to the predictive variance, a finite real
        >= 0 (regression; 0 for logits).

    ``mean`` (P,) is the SWA solution (load it with ``torch.nn.utils.vector_to_parameters``),
    ``var`` (P,) the diagonal variance (clamped at 0), ``deviations`` (K, P), all in the
    model's dtype and on its device. Predictions run the model in eval mode (every module's
    mode restored afterwards). **BatchNorm statistics are not re-estimated** for each sampled
    weight vector (Maddox et al. do, with a pass over the training data): the model's current
    running statistics are used, which is right only for BN-free models.
    """

    def __init__(self, model: nn.Module, swag: SWAGCallback | dict, noise_var: float = 0.0) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(swag, SWAGCallback):
            state = swag.state_dict()
        elif isinstance(swag, dict) and "n_collected" in swag:
            state = swag
        else:
            raise ValueError(
                f"swag must be a SWAGCallback or its state_dict(), got {type(swag).__name__}"
            )
        if int(state["n_collected"]) < 2:
            raise ValueError(
                f"swag must hold at least 2 snapshots, got {int(state['n_collected'])}"
            )
        check_real("noise_var", noise_var, 0.0)
        theta, shapes = _flat(model)
        if [list(s) for s in state["shapes"]] != shapes:
            raise ValueError(
                f"model's parameter shapes {shapes} differ from the ones swag collected "
                f"{state['shapes']}"
            )
        self.model, self.noise_var = model, noise_var
        self.n_collected = int(state["n_collected"])
        self.mean = state["mean"].to(theta)
        self.var = (state["sq_mean"].to(theta) - self.mean.square()).clamp_min(0.0)
        self.deviations = state["deviations"].to(theta)
        self._names = [name for name, _ in model.named_parameters()]
        self._shapes = shapes

    @property
    def rank(self) -> int:
        """K, the number of deviations kept."""
        return self.deviations.shape[0]

    def covariance(self) -> Tensor:
        """(P, P) covariance of ``sample``: ½ (diag(var) + DᵀD / (K − 1)). Dense: small P."""
        low_rank = self.deviations.T @ self.deviations / (self.rank - 1)
        return 0.5 * (torch.diag(self.var) + low_rank)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """One weight vector (P,) θ̄ + (1/√2) var^{1/2} z₁ + (1/√(2(K − 1))) Dᵀ z₂.

        generator: the source of z₁, z₂, a ``torch.Generator`` on the model's device (None:
        torch's global RNG).
        """
        check_generator("generator", generator, self.mean.device)
        return self._draw(generator)

    def _draw(self, generator: torch.Generator | None) -> Tensor:
        like = dict(dtype=self.mean.dtype, device=self.mean.device)
        z1 = torch.randn(self.mean.shape, generator=generator, **like)
        z2 = torch.randn((self.rank,), generator=generator, **like)
        spread = self.var.sqrt() * z1 + (self.deviations.T @ z2) / math.sqrt(self.rank - 1)
        return self.mean + math.sqrt(0.5) * spread

    def _unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for name, shape in zip(self._names, self._shapes):
            size = math.prod(shape)
            out[name] = theta[start : start + size].view(shape)
            start += size
        return out

    @torch.no_grad()
    def predict(
        self, x: object, n_samples: int = 30, generator: torch.Generator | None = None
    ) -> Prediction:
        """x: (B, ...) -> Prediction with samples (T, B, ...) of the model's output, one per
        sampled weight vector; mean and var over them (population variance) + ``noise_var``.

        x: a tensor or an array-like, finite, B >= 1, cast to the model's dtype and device.
        n_samples: T, an int >= 1. generator: as in ``sample``.
        For a classifier the samples are logits: ``mean_probs`` / ``mutual_information`` read
        them.
        """
        n_samples = check_int("n_samples", n_samples, minimum=1)
        check_generator("generator", generator, self.mean.device)
        x = as_float_tensor("x", x)
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"x must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
        x = x.to(dtype=self.mean.dtype, device=self.mean.device)
        states = [(m, m.training) for m in self.model.modules()]
        outputs = []
        try:
            self.model.eval()
            for _ in range(n_samples):
                params = self._unflatten(self._draw(generator))
                outputs.append(torch.func.functional_call(self.model, params, (x,)))
        finally:
            for m, training in states:
                m.training = training
        return Prediction.from_samples(torch.stack(outputs), noise_var=self.noise_var)
