"""Reference networks from the notes, built in one place for recipes, tests and benchmarks."""

from __future__ import annotations

from torch import nn


def notes_regression_net(activation: type[nn.Module] = nn.Tanh, p: float = 0.05) -> nn.Sequential:
    """The notes' MC-dropout regression net (ch. 42), input (B, 1) -> output (B, 1):

    Dropout(p) → Linear(1, 20) → act → Dropout(p) → Linear(20, 20) → act → Linear(20, 1).
    Weights come from torch's default initialisation (the global RNG, as for any nn.Linear).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    return nn.Sequential(
        nn.Dropout(p),
        nn.Linear(1, 20),
        activation(),
        nn.Dropout(p),
        nn.Linear(20, 20),
        activation(),
        nn.Linear(20, 1),
    )
