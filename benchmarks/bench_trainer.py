"""Trainer overhead against a hand-written PyTorch loop: same MLP, data, optimiser, order.

A small MLP (32 -> 128 -> 128 -> 1, Adam) on 8192 in-memory samples, batch 128, 3 epochs per
call, CPU. The hand-written loop shuffles with a seeded generator, slices the permutation,
steps Adam and accumulates the epoch loss on the device, as a careful user would; the trainer
adds its bookkeeping (history, flushes every 50 steps with the non-finite check, callbacks).
Both build their model and optimiser inside the timed call. Target: at most 5% extra time.
A second row feeds a TensorDataset to both (default collate through a DataLoader).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.timing import compare
from ebm.train import Trainer

N, D, HIDDEN, BATCH, EPOCHS = 8192, 32, 128, 128, 3
TARGET = 1.05


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(D, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, 1),
        )

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    return x, torch.sin(x[:, :4].sum(-1))


def _hand_written_tensors(x, y) -> list[float]:
    torch.manual_seed(0)
    model = _MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(EPOCHS):
        perm = torch.randperm(N, generator=g)
        total = torch.zeros(())
        for lo in range(0, N, BATCH):
            idx = perm[lo : lo + BATCH]
            loss = nn.functional.mse_loss(model.net(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        losses.append(total.item() / (N // BATCH))
    return losses


def _hand_written_loader(dataset) -> list[float]:
    torch.manual_seed(0)
    model = _MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    losses = []
    for _ in range(EPOCHS):
        total = torch.zeros(())
        for x, y in loader:
            loss = nn.functional.mse_loss(model.net(x).squeeze(-1), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        losses.append(total.item() / len(loader))
    return losses


def _trainer(data) -> list[float]:
    torch.manual_seed(0)
    model = _MLP()
    trainer = Trainer(max_epochs=EPOCHS, batch_size=BATCH, device="cpu", seed=0, progress=False)
    trainer.fit(model, data)
    return [h["loss"] for h in trainer.history if "batch" not in h]


def _row(name: str, timing: dict) -> dict:
    per_epoch = 1e3 / EPOCHS
    return {
        "name": name,
        "ours": f"{timing['ours_s'] * per_epoch:.1f} ms/epoch (Trainer)",
        "peer": f"{timing['peer_s'] * per_epoch:.1f} ms/epoch (hand-written loop)",
        "ratio": timing["ratio"],
        "target": f"<= {TARGET}",
    }


def run(repeats: int = 11) -> list[dict]:
    x, y = _data()
    # same data, same order, same arithmetic: the epoch losses agree
    ours, peer = _trainer((x, y)), _hand_written_tensors(x, y)
    assert all(abs(a - b) < 1e-4 * max(1.0, abs(b)) for a, b in zip(ours, peer)), (ours, peer)
    dataset = TensorDataset(x, y)
    label = f"MLP {D}-{HIDDEN}-{HIDDEN}-1, Adam, {N} samples, batch {BATCH}"
    return [
        _row(
            f"{label}, tensors",
            compare(lambda: _trainer((x, y)), lambda: _hand_written_tensors(x, y), repeats),
        ),
        _row(
            f"{label}, TensorDataset via DataLoader",
            compare(lambda: _trainer(dataset), lambda: _hand_written_loader(dataset), repeats),
        ),
    ]


if __name__ == "__main__":
    from benchmarks.timing import machine

    print(machine())
    for row in run():
        print(row)
