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
from ebm.bayes.prediction import Prediction
from ebm.bayes.supervised import _LOSSES, _OPTIMIZERS, Supervised
from ebm.models._estimator import ParamsMixin

__all__ = ["DeepEnsemble"]


class DeepEnsemble(ParamsMixin):
    """M independently trained copies of ``make_net()``.

    make_net: builds a fresh net (called M times, member m under seed ``seed + m``).
    n_members: M, an int >= 2.
    loss, optimizer, lr, weight_decay: as in ``Supervised``; trained for ``max_epochs`` (an int
    >= 1) with ``batch_size`` (None: full batch). Predictions run with every member in eval mode.
    noise_var: a fixed observation-noise variance (finite, >= 0) added to the ensemble variance.
    seed: an int >= 0.
    device: "auto", "cpu", "cuda", ... (the Trainer's device).
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
    ) -> None:
        self.make_net, self.n_members = make_net, n_members
        self.loss, self.optimizer, self.lr, self.weight_decay = loss, optimizer, lr, weight_decay
        self.max_epochs, self.batch_size, self.noise_var = max_epochs, batch_size, noise_var
        self.seed, self.device = seed, device
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
        resolve_device(self.device)  # validates the name (and its availability) before any work
        return n_members, max_epochs, batch_size, seed

    def fit(self, x: Tensor, y: Tensor) -> DeepEnsemble:
        """Train every member on x (N, ...) and y (N, ...) or (N,) labels (tensors or
        array-likes). Returns self; the members are ``members_``."""
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
        """x: (B, ...) -> Prediction with samples (M, B, ...) (one row per member).

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
        return Prediction.from_samples(
            torch.stack([o.to(device) for o in outputs]), noise_var=self.noise_var
        )


def _cast_like(x: Tensor, net: nn.Module) -> Tensor:
    """x in the dtype and on the device of the net's first floating parameter (if any)."""
    param = next((p for p in net.parameters() if p.is_floating_point()), None)
    return x if param is None else x.to(device=param.device, dtype=param.dtype)
