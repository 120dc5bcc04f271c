"""Gaussian-process regression baseline: pyro.contrib.gp's exact GP with an RBF (squared
exponential) kernel, hyperparameters by type-II maximum likelihood through the shared Trainer.

Pyro's global parameter store is never touched: every model/guide call runs under
``pyro.settings.context(module_local_params=True)``, so the GP's hyperparameters are the module's
own ``nn.Parameter``s (two regressors never share them, and no ``pyro.clear_param_store()`` is
needed or called).
"""

from __future__ import annotations

import math

import pyro
import pyro.contrib.gp as gp
import torch
from torch import Tensor, nn

from ebm._checks import as_float_tensor, check_choice, check_int, check_positive
from ebm.bayes._lbfgs import minimize_lbfgs
from ebm.bayes._target import check_normalize_y, root_mean_square, standardize
from ebm.bayes.prediction import Prediction
from ebm.models._estimator import ParamsMixin

__all__ = ["GPRegressor"]

_OPTIMIZERS = ("adam", "lbfgs")
# fit's range for rms(y) / sqrt(variance + noise), the initial prior scale (see _check_scale)
_Y_SCALE = (0.01, 10.0)


def _local_params():
    return pyro.settings.context(module_local_params=True)


class _GaussianNLL(torch.autograd.Function):
    """−log N(y; 0, K) for a symmetric positive definite K (N, N) and y (N,), a 0-d tensor, with
    the closed-form gradient ∂/∂K = ½ (K⁻¹ − α αᵀ), α = K⁻¹y: one Cholesky forward and one
    ``cholesky_inverse`` backward, where autograd through ``linalg.cholesky`` and the triangular
    solves of Pyro's MultivariateNormal costs about three times as much (the gradient w.r.t. y,
    α, is returned too)."""

    @staticmethod
    def forward(ctx, gram: Tensor, y: Tensor) -> Tensor:
        L = torch.linalg.cholesky(gram)
        alpha = torch.cholesky_solve(y[:, None], L)  # (N, 1)
        ctx.save_for_backward(L, alpha)
        return (
            0.5 * (y @ alpha[:, 0])
            + L.diagonal().log().sum()
            + 0.5 * y.shape[0] * math.log(2 * math.pi)
        )

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        L, alpha = ctx.saved_tensors
        grad_gram = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_gram = (0.5 * grad) * (torch.cholesky_inverse(L) - alpha @ alpha.T)
        if ctx.needs_input_grad[1]:
            grad_y = grad * alpha[:, 0]
        return grad_gram, grad_y


def _negative_log_marginal(gpr: gp.models.GPRegression) -> Tensor:
    """−log p(y | X, θ) of Pyro's GPRegression (zero mean, no priors: what ``GPRegressor``
    builds): the same number as ``Trace_ELBO().differentiable_loss(gpr.model, gpr.guide)``,
    K = k(X, X) + (σₙ² + jitter) I, through ``_GaussianNLL``'s closed-form gradient."""
    with _local_params():
        gram = gpr.kernel(gpr.X)  # (N, N)
        diagonal = (gpr.noise + gpr.jitter).expand(gram.shape[0])
        gram = gram + torch.diag_embed(diagonal)
        return _GaussianNLL.apply(gram, gpr.y)


class _MarginalLikelihood(nn.Module):
    """Trainable wrapper: loss = −log p(y | X, θ), the GP's negative marginal likelihood."""

    def __init__(self, gpr: gp.models.GPRegression, lr: float) -> None:
        super().__init__()
        self.gpr, self.lr = gpr, lr

    def training_step(self, batch) -> Tensor:
        x, y = batch
        self.gpr.set_data(x, y)  # the batch is on the trainer's device
        return _negative_log_marginal(self.gpr)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.gpr.parameters(), lr=self.lr)


def _as_inputs(name: str, x: object) -> Tensor:
    x = as_float_tensor(name, x, ndim=(1, 2))
    if x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
        raise ValueError(
            f"{name} must have shape (N,) or (N, D) with N, D >= 1, got {tuple(x.shape)}"
        )
    return x.unsqueeze(1) if x.ndim == 1 else x


def _fit_lbfgs(
    gpr: gp.models.GPRegression, x: Tensor, y: Tensor, max_iter: int, device: str
) -> int:
    """Minimise −log p(y | X, θ) over the GP's (unconstrained) parameters with strong-Wolfe
    L-BFGS, at most ``max_iter`` iterations, on ``device``. Returns the iterations run."""
    from ebm.train import resolve_device

    target = resolve_device(device)
    gpr.to(target)
    gpr.set_data(x.to(target), y.to(target))
    return minimize_lbfgs(
        list(gpr.parameters()),
        lambda: _negative_log_marginal(gpr),
        max_iter,
        tolerance_grad=1e-5,
        tolerance_change=1e-9,
    )


class GPRegressor(ParamsMixin):
    """Exact GP regression, y = f(x) + ε, f ~ GP(0, σ² exp(−‖x − x'‖² / (2ℓ²))), ε ~ N(0, σₙ²).

    lengthscale, variance, noise: initial hyperparameters (Pyro's defaults are 1, 1, 1), finite
    and > 0, as are ``lr`` and ``jitter`` (added to the kernel's diagonal); ``fit`` maximises the
    marginal likelihood over the hyper-parameters' logarithms (Pyro's positive constraint) on
    ``device`` ("auto", "cpu", "cuda", ...) with ``optimizer``:

    - "adam" (the default): Adam (``lr``) for ``n_steps`` (an int >= 0) full-batch steps through
      the shared Trainer, as Pyro's GP tutorial (``fit`` then equals ``gp.util.train``).
    - "lbfgs": L-BFGS with a strong-Wolfe line search (``lr`` is ignored), at most ``n_steps``
      iterations, stopping earlier once the gradient's largest entry is below 1e-5 or the loss
      changes by less than 1e-9 (scikit-learn's GaussianProcessRegressor also runs L-BFGS on the
      log hyper-parameters). Each iteration costs one to a few Cholesky factorisations, like an
      Adam step, but it converges in tens of iterations where Adam needs about a thousand: the
      fast choice for exact GPs. ``n_iter_`` holds the iterations run.

    normalize_y: a bool (scikit-learn's GaussianProcessRegressor name and default). True: ``fit``
    standardises y by its mean and std (a constant y's zero std is taken as 1) and fits the GP,
    zero mean, on (y − mean) / std, so the hyper-parameters, ``model_`` and ``history_`` are
    those of the standardised target; ``predict`` and ``log_marginal_likelihood`` answer in y's
    units (mean·std + mean of y, variances·std², the likelihood minus N·log std). False: the GP
    has a zero mean and y is fitted as given, and a y whose scale the fit cannot reach is refused
    (see ``fit``).

    Every hyper-parameter is checked here and again by ``fit``, and stored as given:
    ``get_params``/``set_params`` make ``sklearn.base.clone`` work.
    Fitted hyperparameters: ``lengthscale_``, ``variance_``, ``noise_`` (of the standardised
    target with ``normalize_y``); y's statistics: ``y_mean_``, ``y_std_`` (0-d tensors; 0 and 1
    without ``normalize_y``, as scikit-learn); the Pyro module: ``model_``.

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
        optimizer: str = "adam",
        normalize_y: bool = False,
    ) -> None:
        self.lengthscale, self.variance, self.noise = lengthscale, variance, noise
        self.lr, self.n_steps, self.jitter, self.device = lr, n_steps, jitter, device
        self.optimizer, self.normalize_y = optimizer, normalize_y
        self._check_params()

    def _check_params(self) -> int:
        """Validate every hyper-parameter; returns n_steps as an int."""
        from ebm.train import resolve_device

        for name in ("lengthscale", "variance", "noise", "lr", "jitter"):
            check_positive(name, getattr(self, name))
        n_steps = check_int("n_steps", self.n_steps, minimum=0)
        check_choice("optimizer", self.optimizer, _OPTIMIZERS)
        check_normalize_y(self.normalize_y)
        resolve_device(self.device)  # validates the name (and its availability) before any work
        return n_steps

    def fit(self, x: Tensor, y: Tensor) -> GPRegressor:
        """x: (N,) or (N, D) inputs; y: (N,) or (N, 1) targets (tensors or array-likes).
        Returns self.

        The GP's mean is zero and the fit starts from the initial ``variance`` and ``noise``:
        with ``n_steps`` > 0 and ``normalize_y`` False, a y whose root mean square is outside
        0.01..10 times √(variance + noise) (say y ~ 1e6, or values around 400 with a small
        spread) raises a ValueError naming ``y``: pass ``normalize_y=True``, or scale
        ``variance``, ``noise`` and ``jitter`` by y's mean square (the fit is equivariant: y → s·y
        with all three times s² gives the same fit with the mean times s and the variances times
        s²). With ``normalize_y`` the standardised target has a root mean square of 1 (0 for a
        constant y), so √(variance + noise) must be within 0.1..100 (a ValueError naming them).
        """
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
        if check_normalize_y(self.normalize_y):
            y, self.y_mean_, self.y_std_ = standardize(y)
        else:
            self.y_mean_, self.y_std_ = y.new_zeros(()), y.new_ones(())
        if n_steps > 0:
            self._check_scale(y)
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
        try:
            if n_steps > 0 and self.optimizer == "lbfgs":
                self.n_iter_ = _fit_lbfgs(self.model_, x, y, n_steps, self.device)
            elif n_steps > 0:
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
                self.n_iter_ = n_steps
            else:
                self.n_iter_ = 0
        except torch.linalg.LinAlgError as err:
            raise ValueError(
                "GPRegressor.fit: the kernel matrix of x was not positive definite during the fit "
                f"(initial noise {float(self.noise):g}, jitter {float(self.jitter):g}; "
                "repeated or nearly repeated rows of x, or noiseless y, with little noise do "
                "this, as the optimiser drives the noise towards 0): raise `jitter` or `noise`"
                + ("" if self.normalize_y else ", or pass normalize_y=True")
                + (", or fit in float64" if dtype != torch.float64 else "")
            ) from err
        return self

    def _check_scale(self, y: Tensor) -> None:
        """Refuse a y whose scale the fit cannot reach from the initial hyper-parameters.

        The optimisers move the log hyper-parameters from log(variance), log(noise): measured
        with the defaults (y = a sine of unit mean square times 10^k), Adam returns a variance
        tens of times too small once y's root mean square is above ~20·√(variance + noise), and
        a wrong mean once it is below ~0.01·√(variance + noise); L-BFGS's line search breaks the
        Cholesky factorisation above ~30·√(...). The bounds below are those edges.
        y: the target as fitted (standardised with ``normalize_y``)."""
        rms = float(root_mean_square(y))  # no overflow for huge y
        if rms == 0:  # all zeros: nothing to scale (the fit is degenerate, not wrong)
            return
        prior = math.sqrt(float(self.variance) + float(self.noise))
        if self.normalize_y and not _Y_SCALE[0] <= rms / prior <= _Y_SCALE[1]:
            raise ValueError(
                f"variance and noise must have sqrt(variance + noise) within "
                f"{1 / _Y_SCALE[1]:g}..{1 / _Y_SCALE[0]:g} times the root mean square of the "
                f"standardised y (1) with normalize_y=True, got {prior:.3g}: the fit starts from "
                "them and cannot reach the target's scale from there (leave variance and noise "
                "at their defaults of 1)"
            )
        if not _Y_SCALE[0] <= rms / prior <= _Y_SCALE[1]:
            raise ValueError(
                f"y must have a root mean square within {_Y_SCALE[0]:g}..{_Y_SCALE[1]:g} times "
                f"sqrt(variance + noise) = {prior:.3g}, the scale the fit starts from (it moves "
                f"the log hyper-parameters and cannot reach y's scale from there), got a root "
                f"mean square of {rms:.3g} ({rms / prior:.3g} times it): pass normalize_y=True "
                "(the GP is then fitted on the standardised y and predicts in y's units), or "
                "scale variance, noise and jitter by y's mean square (the fit is then the "
                "standardised one, scaled)"
            )

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
        """log p(y | X, θ) at the fitted hyperparameters (scalar), the density of the training y
        in y's units: with ``normalize_y``, that of the standardised target minus N·log(y_std_)
        (the change of variables; scikit-learn's ``log_marginal_likelihood`` leaves it out)."""
        model = self._check_fitted()
        with torch.no_grad(), _local_params():
            value = -pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide)
        return value - model.y.shape[0] * self.y_std_.log()

    def predict(self, x: Tensor, noiseless: bool = False) -> Prediction:
        """x: (B,) or (B, D) -> Prediction with mean and var (B, 1) and no samples.

        x: finite, with the D of the training inputs; cast to the GP's dtype and device.
        var is the variance of y (f plus noise) unless ``noiseless`` (a bool), then of f alone.
        Both are in y's units (with ``normalize_y``: mean·y_std_ + y_mean_, var·y_std_²).

        scikit-learn's ``GaussianProcessRegressor(ConstantKernel(variance) * RBF(lengthscale),
        normalize_y=...)`` with the same fixed hyper-parameters gives the same mean and variance
        (to rounding, in float64) with ``alpha = noise + jitter`` for ``noiseless=True`` (its
        ``alpha`` is left out of its std), or with a ``WhiteKernel(noise)`` term and
        ``alpha = jitter`` for the default: ``jitter`` is added to the training diagonal like
        the noise (Pyro's GPRegression), so leaving it out of ``alpha`` changes the variances by
        about jitter/noise relative near the data (1 % at noise 1e-4). A float32 GP computes in
        float32 (scikit-learn always in float64): its variances carry relative errors up to
        about cond(K)·1.2e-7, K = k(X, X) + (noise + jitter)·I (4e-4 at noise 1e-3 on 16 points);
        fit float64 data where that matters.
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
        mean = mean * self.y_std_ + self.y_mean_  # exact with y_mean_ 0, y_std_ 1
        var = var * self.y_std_.square()
        return Prediction(mean=mean.unsqueeze(1), var=var.unsqueeze(1))
