"""Reference networks from the notes, built in one place for recipes, tests and benchmarks."""

from __future__ import annotations

import torch
from torch import nn

from ebm._checks import check_int, check_real

__all__ = ["caffe_lenet", "notes_regression_net"]


def notes_regression_net(
    activation: type[nn.Module] = nn.Tanh, p: float = 0.05, seed: int | None = None
) -> nn.Sequential:
    """The notes' MC-dropout regression net (ch. 42), input (B, 1) -> output (B, 1):

    Dropout(p) → Linear(1, 20) → act → Dropout(p) → Linear(20, 20) → act → Linear(20, 1).
    activation: an ``nn.Module`` subclass, built with no arguments; p: the dropout
    probability in [0, 1). Weights come from torch's default initialisation, drawn from the
    global RNG as for any nn.Linear (seed None), or from a generator seeded with ``seed`` (an
    int >= 0: the same weights every time, and the global RNG's state is left as it was).

    >>> net = notes_regression_net(seed=0)
    >>> [type(m).__name__ for m in net][:3]
    ['Dropout', 'Linear', 'Tanh']
    >>> torch.equal(net[1].weight, notes_regression_net(seed=0)[1].weight)
    True
    """
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise ValueError(
            f"activation must be an nn.Module subclass such as nn.Tanh, got {activation!r}"
        )
    check_real("p", p, 0.0, 1.0, high_inclusive=False)
    if seed is not None:
        check_int("seed", seed, minimum=0)
        with torch.random.fork_rng(devices=[]):  # restores the global RNG afterwards
            torch.manual_seed(seed)
            return notes_regression_net(activation, p)
    return nn.Sequential(
        nn.Dropout(p),
        nn.Linear(1, 20),
        activation(),
        nn.Dropout(p),
        nn.Linear(20, 20),
        activation(),
        nn.Linear(20, 1),
    )


def caffe_lenet(p: float = 0.5, seed: int | None = None) -> nn.Sequential:
    """The Caffe LeNet of the notes' MC-dropout MNIST classifier, (B, 1, 28, 28) -> logits (B, 10):

    Conv2d(1, 20, 5) → MaxPool(2) → Conv2d(20, 50, 5) → MaxPool(2) → Flatten → Linear(800, 500)
    → ReLU → Dropout(p) → Linear(500, 10). p: the dropout probability in [0, 1). Weights as for
    ``notes_regression_net``: torch's default initialisation from the global RNG (seed None), or
    from a generator seeded with ``seed`` (an int >= 0), leaving the global RNG as it was.

    >>> net = caffe_lenet(seed=0)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    check_real("p", p, 0.0, 1.0, high_inclusive=False)
    if seed is not None:
        check_int("seed", seed, minimum=0)
        with torch.random.fork_rng(devices=[]):  # restores the global RNG afterwards
            torch.manual_seed(seed)
            return caffe_lenet(p)
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(50 * 4 * 4, 500),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(500, 10),
    )
