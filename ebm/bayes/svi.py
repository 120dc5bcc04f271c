"""Variational Bayesian neural network baseline: the MLP with a Gaussian prior on every weight
and bias, a mean-field Gaussian posterior (Pyro's AutoNormal), fitted by maximising the ELBO
through the shared Trainer, predicted with ``pyro.infer.Predictive``.

As for the GP, every Pyro call runs under ``pyro.settings.context(module_local_params=True)``:
the variational parameters are the guide's own and Pyro's global store stays untouched.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer.autoguide import AutoNormal, init_to_sample
from pyro.nn import PyroModule, PyroSample
from torch import Tensor, nn

from ebm._checks import as_float_tensor, check_choice, check_int, check_positive
from ebm._deprecation import renamed_arguments
from ebm.bayes._target import check_normalize_y, check_target_scale, standardize
from ebm.bayes.prediction import Prediction
from ebm.models._estimator import ParamsMixin

__all__ = ["SVIRegressor"]

# fit's range for the root mean square of y (per output) with normalize_y=False. Measured with
# the defaults (2000 epochs, seed 0) on x = linspace(-1, 1, 32), y = 10^k sin(3x) (rms 0.71·10^k):
# relative error of the mean rms(mean - y) / rms(y) and z = rms((mean - y) / std):
#   rms   7e-7   7e-5   7e-4   7e-3   0.07  0.22  0.71  2.2   71    712   7e3   7e5
#   err   6e4    557    56     6.3    1.46  1.15  1.04  1.01  0.39  0.85  0.99  1.0
#   z     0.04   0.04   0.04   0.05   0.11  0.25  0.45  0.67  2.3   28    297   3e4
# Below ~0.01 the mean is a draw at the prior's scale, many times y's (the std says so); above
# ~100 the fit is confidently wrong (z >> 1; at 7e5 the std is 3e-5 of y's scale).
# The failure is gradual: the bounds are where the error is already large. (At every scale the
# defaults underfit this sine: a HalfNormal(1) noise explains it; that is not the scale's doing.)
_Y_RMS = (0.01, 100.0)
_Y_RMS_WHY = (
    "the priors, N(0, prior_scale²) on the weights and HalfNormal(noise_scale) on the noise, "
    "are at unit scale: measured with the defaults, a smaller y gets a mean many times its "
    "scale, a larger y a confidently wrong fit"
)

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


def _local_params():
    return pyro.settings.context(module_local_params=True)


class _BayesianMLP(PyroModule):
    """y ~ N(f_W(x), σ²), W ~ N(0, prior_scale²) elementwise, σ ~ HalfNormal(noise_scale)."""

    def __init__(
        self, sizes: Sequence[int], activation: str, prior_scale: float, noise_scale: float
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = PyroModule[nn.Linear](a, b)
            layer.register_buffer("prior_scale", torch.tensor(float(prior_scale)))
            layer.weight = PyroSample(
                lambda m: dist.Normal(0.0, m.prior_scale).expand(m.weight_shape).to_event(2)
            )
            layer.bias = PyroSample(
                lambda m: dist.Normal(0.0, m.prior_scale).expand(m.bias_shape).to_event(1)
            )
            layer.weight_shape, layer.bias_shape = (b, a), (b,)
            layers.append(layer)
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
        self.net = PyroModule[nn.Sequential](*layers)
        self.register_buffer("noise_scale", torch.tensor(float(noise_scale)))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        f = self.net(x)  # (B, D)
        sigma = pyro.sample("sigma", dist.HalfNormal(self.noise_scale))
        pyro.deterministic("noise_var", sigma**2)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(f, sigma).to_event(1), obs=y)
        return f


class _ELBO(nn.Module):
    """Trainable wrapper: loss = −ELBO / N for a full or mini batch (x, y)."""

    def __init__(self, model: _BayesianMLP, guide: AutoNormal, n_data: int, lr: float) -> None:
        super().__init__()
        self.model, self.guide, self.n_data, self.lr = model, guide, n_data, lr
        self._elbo = pyro.infer.Trace_ELBO()

    def training_step(self, batch) -> Tensor:
        x, y = batch
        scale = self.n_data / x.shape[0]  # a mini-batch stands for all N points
        with _local_params(), pyro.poutine.scale(scale=scale):
            return self._elbo.differentiable_loss(self.model, self.guide, x, y) / self.n_data

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.guide.parameters(), lr=self.lr)


def _int_tuple(values: object) -> tuple[int, ...] | None:
    """A tuple of Python ints from an iterable of integers (no bools), or None."""
    try:
        items = tuple(values)
    except TypeError:
        return None
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in items):
        return None
    return tuple(int(v) for v in items)


class SVIRegressor(ParamsMixin):
    """Mean-field variational BNN regression with the layer ``sizes`` (in, hidden..., out).

    prior_scale: std of the Gaussian prior on every weight and bias; noise_scale: scale of the
    HalfNormal prior on the observation noise σ. ``fit`` runs ``max_epochs`` of Adam (``lr``) on the
    negative ELBO (full batch unless ``batch_size``); ``predict`` draws ``n_samples`` networks.
    sizes: the layer widths (in, hidden..., out), at least two positive ints.
    activation: the hidden layers' nonlinearity, one of "tanh", "relu", "silu".
    prior_scale: std of the Gaussian prior on every weight and bias; noise_scale: scale of the
        HalfNormal prior on the observation noise σ.
    lr: Adam's learning rate; max_epochs: passes over the data (``n_epochs`` before 0.2); batch_size: rows per step (None:
        the full batch).
    n_samples: networks drawn from the posterior by ``predict``.
    init_scale: the initial std of the variational posterior (AutoNormal's init_scale).
    seed: seeds the initial variational parameters and the Trainer (None: the global RNG's
        state, which is left as it was); device: "auto", "cpu", "cuda", ...
    normalize_y: a bool (scikit-learn's name and default). True: ``fit`` standardises y by its
        mean and std per output column (a constant column's zero std is taken as 1) and fits
        the BNN, priors included, on (y − mean) / std; ``predict`` maps back to y's units
        (samples·std + mean, the noise variance·std²). False: y is fitted as given and a y
        whose root mean square (per column) is outside 0.01..100, where the default priors'
        fit is measured to go wrong, is refused naming ``y`` (see ``fit``).
    Fitted: ``model_``, ``guide_``, ``history_`` (of the standardised target with normalize_y)
    and y's statistics ``y_mean_``, ``y_std_`` (out,) (0 and 1 without normalize_y).
    Scales, ``lr`` and ``init_scale`` are finite and > 0; counts are ints >= 1; ``seed`` an int
    >= 0 or None. Every hyper-parameter is checked here and again by ``fit``, and stored as
    given: ``get_params``/``set_params`` make ``sklearn.base.clone`` work.

    Data: tensors or array-likes (numpy arrays, nested lists), finite. The network's parameters
    have the default float dtype: ``fit`` and ``predict`` cast their inputs to it (float64 data
    are computed in float32 under torch's default; integer and bool data are promoted).
    ``predict`` returns a ``Prediction`` of torch tensors in that dtype, on the fitted device.
    """

    @renamed_arguments(n_epochs="max_epochs")
    def __init__(
        self,
        sizes: Sequence[int] = (1, 20, 20, 1),
        activation: str = "tanh",
        prior_scale: float = 1.0,
        noise_scale: float = 1.0,
        lr: float = 0.01,
        max_epochs: int = 2000,
        batch_size: int | None = None,
        n_samples: int = 100,
        init_scale: float = 0.01,
        seed: int | None = None,
        device: str = "auto",
        normalize_y: bool = False,
    ) -> None:
        self.sizes, self.activation = sizes, activation
        self.prior_scale, self.noise_scale = prior_scale, noise_scale
        self.lr, self.max_epochs, self.batch_size = lr, max_epochs, batch_size
        self.n_samples, self.init_scale, self.seed, self.device = (
            n_samples,
            init_scale,
            seed,
            device,
        )
        self.normalize_y = normalize_y
        self._check_params()

    def _check_params(self) -> dict:
        """Validate every hyper-parameter; returns the layer sizes, counts and seed as ints."""
        from ebm.train import resolve_device

        sizes = self.sizes
        layers = None if isinstance(sizes, (str, bytes)) else _int_tuple(sizes)
        if layers is None or len(layers) < 2 or min(layers) < 1:
            raise ValueError(
                f"sizes must be a sequence of at least two positive ints, got {sizes!r}"
            )
        check_choice("activation", self.activation, tuple(_ACTIVATIONS))
        for name in ("prior_scale", "noise_scale", "lr", "init_scale"):
            check_positive(name, getattr(self, name))
        checked = {
            "sizes": layers,
            "max_epochs": check_int("max_epochs", self.max_epochs, minimum=1),
            "n_samples": check_int("n_samples", self.n_samples, minimum=1),
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
        if self.batch_size is not None:
            checked["batch_size"] = check_int("batch_size", self.batch_size, minimum=1)
        if self.seed is not None:
            checked["seed"] = check_int("seed", self.seed, minimum=0)
        check_normalize_y(self.normalize_y)
        resolve_device(self.device)  # validates the name (and its availability) before any work
        return checked

    def fit(self, x: Tensor, y: Tensor) -> SVIRegressor:
        """x: (N, in) inputs, y: (N, out) targets, N >= 1 (tensors or array-likes). Returns
        self.

        With ``normalize_y`` False, a y whose root mean square (per column) is outside
        0.01..100 raises a ValueError naming ``y``: the priors are at unit scale and, measured
        with the defaults, a smaller y gets a mean many times its scale and a larger y a
        confidently wrong fit (y ~ 1e6: a std 3e-5 of y's scale). Pass ``normalize_y=True``.
        With ``normalize_y``, a y whose variance overflows the dtype (float32 y ~ 1e20) is
        refused naming ``y``.
        """
        from ebm.train import Trainer

        params = self._check_params()
        sizes, seed = params["sizes"], params["seed"]
        dtype = torch.get_default_dtype()
        x = as_float_tensor("x", x, ndim=2).to(dtype)
        y = as_float_tensor("y", y, ndim=2).to(device=x.device, dtype=dtype)
        if x.shape != (y.shape[0], sizes[0]) or y.shape[1] != sizes[-1] or len(x) < 1:
            raise ValueError(
                f"x must be (N, {sizes[0]}) and y (N, {sizes[-1]}) with N >= 1, got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        if check_normalize_y(self.normalize_y):
            y, self.y_mean_, self.y_std_ = standardize(y)  # (N, out), (out,), (out,)
        else:
            check_target_scale(y, _Y_RMS, _Y_RMS_WHY)
            self.y_mean_, self.y_std_ = y.new_zeros(y.shape[1:]), y.new_ones(y.shape[1:])
        with _local_params(), torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)  # inside fork_rng: the caller's RNG is restored
            self.model_ = _BayesianMLP(sizes, self.activation, self.prior_scale, self.noise_scale)
            self._in_features, self._n_samples = sizes[0], params["n_samples"]
            self.guide_ = AutoNormal(
                self.model_, init_loc_fn=init_to_sample, init_scale=self.init_scale
            )  # means start at a prior draw: a random init that breaks the units' symmetry
            self.guide_(x, y)  # creates the variational parameters
        trainer = Trainer(
            max_epochs=params["max_epochs"],
            batch_size=params["batch_size"],
            device=self.device,
            seed=seed,
            progress=False,
            log_every_n_steps=None,
            tensorboard=False,
        )
        with torch.random.fork_rng(devices=[]):  # the trainer's seeding stays in here
            trainer.fit(_ELBO(self.model_, self.guide_, x.shape[0], self.lr), (x, y))
        self.history_ = trainer.history
        return self

    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> Prediction:
        """x: (B, in) -> Prediction: samples (T, B, out) of f, var = their variance + E[σ²], in
        y's units (with ``normalize_y``: samples·y_std_ + y_mean_, E[σ²]·y_std_²).

        x: finite, B >= 1; cast to the dtype and device of the fitted variational parameters.
        generator: draws the posterior samples (Pyro samples from torch's global RNG, so they
        run inside a fork of it seeded from ``generator``; the caller's RNG is untouched). None:
        a fork seeded from the global RNG, which advances it by one draw.
        """
        if not hasattr(self, "guide_"):
            raise ValueError("this SVIRegressor is not fitted yet: call fit(x, y) first")
        x = as_float_tensor("x", x, ndim=2)
        if x.shape[1] != self._in_features or len(x) < 1:
            raise ValueError(
                f"x must be (B, {self._in_features}) with B >= 1, got {tuple(x.shape)}"
            )
        param = next(self.guide_.parameters())
        predictive = pyro.infer.Predictive(
            self.model_,
            guide=self.guide_,
            num_samples=self._n_samples,
            return_sites=("_RETURN", "noise_var"),
        )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
        seed = int(torch.randint(2**62, (), generator=generator))
        devices = [param.device] if param.device.type == "cuda" else []
        with torch.no_grad(), _local_params(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)  # inside the fork: the caller's RNG is restored
            draws = predictive(x.to(device=param.device, dtype=param.dtype))
        samples = draws["_RETURN"]  # (T, B, out), of the standardised target with normalize_y
        std = self.y_std_.to(samples)  # (out,); exact with y_mean_ 0 and y_std_ 1
        samples = samples * std + self.y_mean_.to(samples)
        return Prediction.from_samples(samples, noise_var=draws["noise_var"].mean() * std.square())
