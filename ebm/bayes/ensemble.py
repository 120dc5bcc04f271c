"""Deep ensemble baseline (Lakshminarayanan et al. 2017, without their variance head): M nets
from different random initialisations, each trained on the same data through the shared
Trainer; the spread of their predictions is the uncertainty."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_index_tensor,
    check_choice,
    check_int,
    check_positive,
    check_real,
)
from ebm.bayes._target import check_normalize_y, check_target_scale, standardize
from ebm.bayes.prediction import Prediction
from ebm.bayes.supervised import _LOSSES, _OPTIMIZERS, Supervised
from ebm.models._estimator import ParamsMixin

__all__ = ["DeepEnsemble"]

# fit's range for the root mean square of y (per output) with loss="mse" and normalize_y=False.
# Measured with the defaults (SGD, lr 0.01, 1000 full-batch epochs, 5 members, seed 0) on
# x = linspace(-1, 1, 32), y = 10^k sin(3x), for two nets: notes_regression_net(nn.Tanh, p=0)
# and Linear(1, 32)-Tanh-Linear(32, 1); relative error of the mean rms(mean - y) / rms(y):
#   rms     7e-5   7e-4   2e-3   7e-3   0.07  0.71  7.1   71    225   712   7e3   7e5   7e18
#   notes   133    13     4.3    1.47   0.59  0.52  0.07  0.26  0.66  0.81  0.83  0.36  inf
#   mlp     12.5   1.69   0.91   0.68   0.59  0.57  0.19  0.02  0.11  0.33  0.27  0.17  -
# Below ~0.01 the members' mean is their initial output, at the init's scale, not y's; from
# ~300 the error is large for both nets (the mlp at 712: z = rms((mean - y) / std) = 3e3,
# confidently wrong), and at 7e18 the loss overflows (the Trainer's NonFiniteLossError). The
# failure is gradual and depends on the net: the bounds are where the error is already large.
_Y_RMS = (0.01, 300.0)
_Y_RMS_WHY = (
    "SGD from a net's initialisation fits a target of about unit scale: measured with the "
    "defaults, a smaller y gets the initial nets' output as its mean, a larger one a mean "
    "that is far off, and y ~ 1e19 a non-finite loss"
)


class DeepEnsemble(ParamsMixin):
    """M independently trained copies of ``make_net()``.

    make_net: builds a fresh net (called M times, member m under seed ``seed + m``).
    n_members: M, an int >= 2.
    loss, optimizer, lr, weight_decay: as in ``Supervised``; trained for ``max_epochs`` (an int
    >= 1) with ``batch_size`` (None: full batch). Predictions run with every member in eval mode.
    noise_var: a fixed observation-noise variance (finite, >= 0) added to the ensemble variance.
    seed: an int >= 0.
    device: "auto", "cpu", "cuda", ... (the Trainer's device).
    normalize_y: a bool (scikit-learn's name and default), for loss "mse" only. True: ``fit``
        standardises y by its mean and std per output element (a constant element's zero std is
        taken as 1) and trains the members on (y − mean) / std; ``predict`` maps their outputs
        back to y's units (samples·std + mean); ``noise_var`` stays in y's units. False: y is
        fitted as given and a y whose root mean square (per output element) is outside
        0.01..300, where the fit is measured to go wrong, is refused naming ``y`` (see ``fit``).
    Fitted: ``members_`` (predicting the standardised target with normalize_y) and y's
    statistics ``y_mean_``, ``y_std_`` of shape y.shape[1:] (0 and 1 without normalize_y; None
    for "cross_entropy").
    Every hyper-parameter is checked here and again by ``fit``, before any training, and
    stored as given: ``get_params``/``set_params`` make ``sklearn.base.clone`` work.

    Data: tensors or array-likes, finite. x is cast to each member's parameter dtype and device
    (float64 data into float32 nets are computed in float32; integer and bool data are
    promoted). For "mse", y is float and must have the shape of the nets' output; for
    "cross_entropy", y (N,) holds integer class indices in [0, C). ``predict`` returns a
    ``Prediction`` of torch tensors on the first member's device, in its dtype.
    """

    def __init__(
        self,
        make_net: Callable[[], nn.Module],
        n_members: int = 5,
        loss: str = "mse",
        optimizer: str = "sgd",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        max_epochs: int = 1000,
        batch_size: int | None = None,
        noise_var: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        normalize_y: bool = False,
    ) -> None:
        self.make_net, self.n_members = make_net, n_members
        self.loss, self.optimizer, self.lr, self.weight_decay = loss, optimizer, lr, weight_decay
        self.max_epochs, self.batch_size, self.noise_var = max_epochs, batch_size, noise_var
        self.seed, self.device, self.normalize_y = seed, device, normalize_y
        self._check_params()

    def _check_params(self) -> tuple[int, int, int | None, int]:
        """Validate every hyper-parameter; returns (n_members, max_epochs, batch_size, seed) as
        ints."""
        from ebm.train import resolve_device

        if not callable(self.make_net) or isinstance(self.make_net, nn.Module):
            raise ValueError(
                f"make_net must be a callable returning a fresh nn.Module, got {self.make_net!r}"
            )
        n_members = check_int("n_members", self.n_members, minimum=2)
        check_choice("loss", self.loss, tuple(_LOSSES))
        check_choice("optimizer", self.optimizer, tuple(_OPTIMIZERS))
        check_positive("lr", self.lr)
        check_real("weight_decay", self.weight_decay, 0.0)
        max_epochs = check_int("max_epochs", self.max_epochs, minimum=1)
        batch_size = self.batch_size
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, minimum=1)
        check_real("noise_var", self.noise_var, 0.0)
        seed = check_int("seed", self.seed, minimum=0)
        if check_normalize_y(self.normalize_y) and self.loss != "mse":
            raise ValueError(
                f"normalize_y=True standardises a real-valued target: it needs loss='mse', got "
                f"loss={self.loss!r} (class labels have no scale)"
            )
        resolve_device(self.device)  # validates the name (and its availability) before any work
        return n_members, max_epochs, batch_size, seed

    def fit(self, x: Tensor, y: Tensor) -> DeepEnsemble:
        """Train every member on x (N, ...) and y (N, ...) or (N,) labels (tensors or
        array-likes). Returns self; the members are ``members_``.

        For "mse" with ``normalize_y`` False, a y whose root mean square (per output element) is
        outside 0.01..300 raises a ValueError naming ``y``: measured with the default SGD and two
        small tanh nets, a smaller y gets the initial nets' output as its mean, a larger one a
        mean far off (and y ~ 1e19 a non-finite loss). Pass ``normalize_y=True`` (a y whose
        variance overflows the dtype, float32 y ~ 1e20, is then refused naming ``y``).
        """
        from ebm.train import Trainer

        n_members, max_epochs, batch_size, seed = self._check_params()
        x = as_float_tensor("x", x)
        if x.ndim < 1 or len(x) < 1:
            raise ValueError(f"x must have shape (N, ...) with N >= 1, got {tuple(x.shape)}")
        if self.loss == "cross_entropy":
            y = as_index_tensor("y", y, ndim=1)
        else:
            y = as_float_tensor("y", y)
        if y.ndim < 1 or len(y) != len(x):
            raise ValueError(
                f"y must have one row per row of x {tuple(x.shape)}, got {tuple(y.shape)}"
            )
        self.y_mean_ = self.y_std_ = None
        if self.loss == "mse" and self.normalize_y:
            y, self.y_mean_, self.y_std_ = standardize(y)  # (N, ...), (...), (...)
        elif self.loss == "mse":
            check_target_scale(y, _Y_RMS, _Y_RMS_WHY)
            self.y_mean_, self.y_std_ = y.new_zeros(y.shape[1:]), y.new_ones(y.shape[1:])
        members: list[nn.Module] = []
        for m in range(n_members):
            with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
                torch.manual_seed(seed + m)
                net = self.make_net()
            if not isinstance(net, nn.Module):
                raise ValueError(f"make_net must return an nn.Module, got {type(net).__name__}")
            xm = _cast_like(x, net)
            ym = y if self.loss == "cross_entropy" else y.to(dtype=xm.dtype)
            if m == 0:
                self._check_output(net, xm, y)
            model = Supervised(
                net, self.loss, self.optimizer, lr=self.lr, weight_decay=self.weight_decay
            )
            with torch.random.fork_rng(devices=[]):
                Trainer(
                    max_epochs=max_epochs,
                    batch_size=batch_size,
                    device=self.device,
                    seed=seed + m,
                    progress=False,
                    log_every_n_steps=None,
                    tensorboard=False,
                ).fit(model, (xm, ym))
            members.append(net.eval())
        self.members_ = members
        return self

    def _check_output(self, net: nn.Module, x: Tensor, y: Tensor) -> None:
        """One eval-mode forward on a row of x: y must fit what the net returns."""
        training = net.training
        try:
            with torch.no_grad():
                out = net.eval()(x[:1])
        finally:
            net.train(training)
        if not isinstance(out, Tensor) or out.ndim < 1:
            raise ValueError(
                f"make_net's nets must return a Tensor (B, ...), got {type(out).__name__}"
            )
        if self.loss == "cross_entropy":
            if out.ndim != 2:
                raise ValueError(
                    f"make_net's nets must return logits (B, C) for cross_entropy, got "
                    f"{tuple(out.shape)}"
                )
            as_index_tensor("y", y, high=out.shape[1])
        elif out.shape[1:] != y.shape[1:]:
            raise ValueError(
                f"y must have the shape of the nets' output (N, *{tuple(out.shape[1:])}), got "
                f"{tuple(y.shape)}"
            )

    @torch.no_grad()
    def predict(self, x: Tensor) -> Prediction:
        """x: (B, ...) -> Prediction with samples (M, B, ...) (one row per member), in y's units
        (with ``normalize_y``: the members' outputs·y_std_ + y_mean_), var = their variance +
        ``noise_var``.

        x: finite, B >= 1 (a tensor or array-like); cast to each member's parameter dtype and
        device. The Prediction's tensors are on the first member's device.
        """
        if not hasattr(self, "members_"):
            raise ValueError("this DeepEnsemble is not fitted yet: call fit(x, y) first")
        x = as_float_tensor("x", x)
        if x.ndim < 1 or len(x) < 1:
            raise ValueError(f"x must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
        outputs = [net(_cast_like(x, net)) for net in self.members_]
        device = outputs[0].device
        samples = torch.stack([o.to(device) for o in outputs])  # (M, B, ...)
        if self.y_std_ is not None:  # "mse": back to y's units (exact with y_mean_ 0, y_std_ 1)
            samples = samples * self.y_std_.to(samples) + self.y_mean_.to(samples)
        return Prediction.from_samples(samples, noise_var=self.noise_var)


def _cast_like(x: Tensor, net: nn.Module) -> Tensor:
    """x in the dtype and on the device of the net's first floating parameter (if any)."""
    param = next((p for p in net.parameters() if p.is_floating_point()), None)
    return x if param is None else x.to(device=param.device, dtype=param.dtype)
