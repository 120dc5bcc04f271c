"""Small trainable models shared by the trainer tests (not a test module itself)."""

from __future__ import annotations

import torch
from torch import nn


class Regression(nn.Module):
    """Linear least squares: training_step returns the MSE tensor."""

    def __init__(self, d: int = 3, lr: float = 0.1, seed: int = 0):
        super().__init__()
        self.lin = nn.Linear(d, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(1, d, generator=g))
            self.lin.bias.zero_()
        self.lr = lr

    def forward(self, x):
        return self.lin(x).squeeze(-1)

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.mse_loss(self(x), y)}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def regression_data(n: int = 256, d: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.linspace(-1.0, 1.0, d)
    y = x @ w + 0.3 + 0.1 * torch.randn(n, generator=g)
    return x, y


class MLP(nn.Module):
    """A small MLP regressor with Adam, deterministic on CPU."""

    def __init__(self, d: int = 4, hidden: int = 16, seed: int = 0, lr: float = 1e-2):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
        self.lr = lr

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def validation_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.mse_loss(self.net(x).squeeze(-1), y)}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class PoisonedMLP(MLP):
    """An MLP whose loss turns NaN on samples with target 99 (training data must be finite,
    so the poison is applied inside training_step)."""

    def training_step(self, batch):
        x, y = batch
        return super().training_step((x, torch.where(y == 99.0, torch.nan, y)))


def mlp_data(n: int = 96, d: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.sin(x.sum(-1))
    return x, y


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)
    }
