"""Deep ensemble baseline (Lakshminarayanan et al. 2017, without their variance head): M nets
from different random initialisations, each trained on the same data through the shared
Trainer; the spread of their predictions is the uncertainty."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ebm._checks import check_tensor
from ebm.bayes.prediction import Prediction
from ebm.bayes.supervised import Supervised


class DeepEnsemble:
    """M independently trained copies of ``make_net()``.

    make_net: builds a fresh net (called M times, member m under seed ``seed + m``).
    loss, optimizer, lr, weight_decay: as in ``Supervised``; trained for ``max_epochs`` with
    ``batch_size`` (None: full batch). Predictions run with every member in eval mode.
    noise_var: a fixed observation-noise variance added to the ensemble variance.
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
        if not callable(make_net):
            raise ValueError(
                f"make_net must be a callable returning an nn.Module, got {make_net!r}"
            )
        if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 2:
            raise ValueError(f"n_members must be an int >= 2, got {n_members!r}")
        if noise_var < 0:
            raise ValueError(f"noise_var must be >= 0, got {noise_var!r}")
        self.make_net, self.n_members = make_net, n_members
        self.loss, self.optimizer, self.lr, self.weight_decay = loss, optimizer, lr, weight_decay
        self.max_epochs, self.batch_size, self.noise_var = max_epochs, batch_size, noise_var
        self.seed, self.device = seed, device

    def fit(self, x: Tensor, y: Tensor) -> DeepEnsemble:
        """Train every member on (x, y). Returns self; the members are ``members_``."""
        from ebm.train import Trainer

        check_tensor("x", x)
        check_tensor("y", y)
        self.members_: list[nn.Module] = []
        for m in range(self.n_members):
            with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
                torch.manual_seed(self.seed + m)
                net = self.make_net()
            if not isinstance(net, nn.Module):
                raise ValueError(f"make_net must return an nn.Module, got {type(net).__name__}")
            model = Supervised(
                net, self.loss, self.optimizer, lr=self.lr, weight_decay=self.weight_decay
            )
            with torch.random.fork_rng(devices=[]):
                Trainer(
                    max_epochs=self.max_epochs,
                    batch_size=self.batch_size,
                    device=self.device,
                    seed=self.seed + m,
                    progress=False,
                    log_every_n_steps=None,
                    tensorboard=False,
                ).fit(model, (x, y))
            self.members_.append(net.eval())
        return self

    @torch.no_grad()
    def predict(self, x: Tensor) -> Prediction:
        """x: (B, ...) -> Prediction with samples (M, B, ...) (one row per member)."""
        if not hasattr(self, "members_"):
            raise ValueError("this DeepEnsemble is not fitted yet: call fit(x, y) first")
        check_tensor("x", x)
        outputs = []
        for net in self.members_:
            device = next(net.parameters()).device
            outputs.append(net(x.to(device)))
        return Prediction.from_samples(torch.stack(outputs), noise_var=self.noise_var)
