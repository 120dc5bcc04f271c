"""Reference networks from the notes, built in one place for recipes, tests and benchmarks."""

from __future__ import annotations

from torch import nn

from ebm._checks import check_real

__all__ = ["notes_regression_net"]


def notes_regression_net(activation: type[nn.Module] = nn.Tanh, p: float = 0.05) -> nn.Sequential:
    """The notes' MC-dropout regression net (ch. 42), input (B, 1) -> output (B, 1):

    Dropout(p) → Linear(1, 20) → act → Dropout(p) → Linear(20, 20) → act → Linear(20, 1).
    activation: an ``nn.Module`` subclass, built with no arguments; p: the dropout
    probability in [0, 1). Weights come from torch's default initialisation (the global RNG, as
    for any nn.Linear).
    """
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise ValueError(
            f"activation must be an nn.Module subclass such as nn.Tanh, got {activation!r}"
        )
    check_real("p", p, 0.0, 1.0, high_inclusive=False)
    return nn.Sequential(
        nn.Dropout(p),
        nn.Linear(1, 20),
        activation(),
        nn.Dropout(p),
        nn.Linear(20, 20),
        activation(),
        nn.Linear(20, 1),
    )
