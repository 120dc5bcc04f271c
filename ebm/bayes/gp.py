"""Gaussian-process regression baseline: pyro.contrib.gp's exact GP with an RBF (squared
exponential) kernel, hyperparameters by type-II maximum likelihood through the shared Trainer.

Pyro's global parameter store is never touched: every model/guide call runs under
``pyro.settings.context(module_local_params=True)``, so the GP's hyperparameters are the module's
own ``nn.Parameter``s (two regressors never share them, and no ``pyro.clear_param_store()`` is
needed or called).
"""

from __future__ import annotations

import pyro
import pyro.contrib.gp as gp
import torch
from torch import Tensor, nn

from ebm._checks import as_float_tensor, check_choice, check_int, check_positive
from ebm.bayes.prediction import Prediction
from ebm.models._estimator import ParamsMixin

__all__ = ["GPRegressor"]


def _local_params():
    return pyro.settings.context(module_local_params=True)


class _MarginalLikelihood(nn.Module):
    """Trainable wrapper: loss = −log p(y | X, θ), the GP's negative marginal likelihood."""

    def __init__(self, gpr: gp.models.GPRegression, lr: float) -> None:
        super().__init__()
        self.gpr, self.lr = gpr, lr
        self._elbo = pyro.infer.Trace_ELBO()

    def training_step(self, batch) -> Tensor:
        x, y = batch
        self.gpr.set_data(x, y)  # the batch is on the trainer's device
        with _local_params():
            return self._elbo.differentiable_loss(self.gpr.model, self.gpr.guide)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.gpr.parameters(), lr=self.lr)


def _as_inputs(name: str, x: object) -> Tensor:
    x = as_float_tensor(name, x, ndim=(1, 2))
    if x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
        raise ValueError(
            f"{name} must have shape (N,) or (N, D) with N, D >= 1, got {tuple(x.shape)}"
        )
    return x.unsqueeze(1) if x.ndim == 1 else x


class GPRegressor(ParamsMixin):
    """Exact GP regression, y = f(x) + ε, f ~ GP(0, σ² exp(−‖x − x'‖² / (2ℓ²))), ε ~ N(0, σₙ²).

    lengthscale, variance, noise: initial hyperparameters (Pyro's defaults are 1, 1, 1), finite
    and > 0, as are ``lr`` and ``jitter`` (added to the kernel's diagonal); ``fit`` maximises the
    marginal likelihood with Adam (``lr``) for ``n_steps`` (an int >= 0) full-batch steps on
    ``device`` ("auto", "cpu", "cuda", ...). Every hyper-parameter is checked here and again by
    ``fit``, and stored as given: ``get_params``/``set_params`` make ``sklearn.base.clone`` work.
    Fitted hyperparameters: ``lengthscale_``, ``variance_``, ``noise_``; the Pyro module: ``model_``.

    Data: tensors or array-likes (numpy arrays, nested lists), finite. The GP is built in the
    floating dtype of the training data (integer and bool data: the default float dtype), so
    float64 data give a float64 GP; ``predict`` casts its inputs to that dtype and device and
    returns a ``Prediction`` of torch tensors in that dtype, on that device.
    """

    def __init__(
        self,
        lengthscale: float = 1.0,
        variance: float = 1.0,
        noise: float = 1.0,
        lr: float = 0.01,
        n_steps: int = 1000,
        jitter: float = 1e-6,
        device: str = "auto",
    ) -> None:
        self.lengthscale, self.variance, self.noise = lengthscale, variance, noise
        self.lr, self.n_steps, self.jitter, self.device = lr, n_steps, jitter, device
        self._check_params()

    def _check_params(self) -> int:
        """Validate every hyper-parameter; returns n_steps as an int."""
        from ebm.train import resolve_device

        for name in ("lengthscale", "variance", "noise", "lr", "jitter"):
            check_positive(name, getattr(self, name))
        n_steps = check_int("n_steps", self.n_steps, minimum=0)
        resolve_device(self.device)  # validates the name (and its availability) before any work
        return n_steps

    def fit(self, x: Tensor, y: Tensor) -> GPRegressor:
        """x: (N,) or (N, D) inputs; y: (N,) or (N, 1) targets (tensors or array-likes).
        Returns self."""
        from ebm.train import Trainer

        n_steps = self._check_params()
        x = _as_inputs("x", x)
        y = as_float_tensor("y", y, ndim=(1, 2))
        y = y.squeeze(1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.shape != x.shape[:1]:
            raise ValueError(
                f"y must have shape ({x.shape[0]},) or ({x.shape[0]}, 1), got {tuple(y.shape)}"
            )
        dtype = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(dtype), y.to(device=x.device, dtype=dtype)
        with _local_params():  # modules built here keep a parameter state of their own
            kernel = gp.kernels.RBF(
                input_dim=x.shape[1],
                variance=torch.tensor(float(self.variance), dtype=dtype),
                lengthscale=torch.tensor(float(self.lengthscale), dtype=dtype),
            )
            self.model_ = gp.models.GPRegression(
                x,
                y,
                kernel,
                noise=torch.tensor(float(self.noise), dtype=dtype),
                jitter=float(self.jitter),
            )
        if n_steps > 0:
            trainer = Trainer(
                max_epochs=n_steps,
                batch_size=None,
                device=self.device,
                shuffle=False,
                progress=False,
                log_every_n_steps=None,
                tensorboard=False,
            )
            trainer.fit(_MarginalLikelihood(self.model_, self.lr), (x, y))
            self.history_ = trainer.history
        return self

    def _check_fitted(self) -> gp.models.GPRegression:
        if not hasattr(self, "model_"):
            raise ValueError("this GPRegressor is not fitted yet: call fit(x, y) first")
        return self.model_

    @property
    def lengthscale_(self) -> Tensor:
        """The fitted RBF kernel's lengthscale, a 0-d tensor (raises before ``fit``)."""
        return self._check_fitted().kernel.lengthscale.detach()

    @property
    def variance_(self) -> Tensor:
        """The fitted kernel's signal variance, a 0-d tensor (raises before ``fit``)."""
        return self._check_fitted().kernel.variance.detach()

    @property
    def noise_(self) -> Tensor:
        """The fitted observation-noise variance, a 0-d tensor (raises before ``fit``)."""
        return self._check_fitted().noise.detach()

    def log_marginal_likelihood(self) -> Tensor:
        """log p(y | X, θ) at the fitted hyperparameters (scalar)."""
        model = self._check_fitted()
        with torch.no_grad(), _local_params():
            return -pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide)

    def predict(self, x: Tensor, noiseless: bool = False) -> Prediction:
        """x: (B,) or (B, D) -> Prediction with mean and var (B, 1) and no samples.

        x: finite, with the D of the training inputs; cast to the GP's dtype and device.
        var is the variance of y (f plus noise) unless ``noiseless`` (a bool), then of f alone.
        """
        check_choice("noiseless", noiseless, (False, True))
        model = self._check_fitted()
        x = _as_inputs("x", x)
        if x.shape[1] != model.X.shape[1]:
            raise ValueError(
                f"x must have the D = {model.X.shape[1]} features of the training inputs, got "
                f"{tuple(x.shape)}"
            )
        with torch.no_grad(), _local_params():
            mean, var = model(x.to(model.X), full_cov=False, noiseless=noiseless)
        return Prediction(mean=mean.unsqueeze(1), var=var.unsqueeze(1))
