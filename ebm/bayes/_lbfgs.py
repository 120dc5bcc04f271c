"""Full-batch strong-Wolfe L-BFGS over a few parameters: the fitting loop of the post-hoc
calibrators (temperature and vector scaling) and of ``GPRegressor(optimizer="lbfgs")``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def minimize_lbfgs(
    params: list[Tensor],
    loss_fn: Callable[[], Tensor],
    max_iter: int,
    tolerance_grad: float,
    tolerance_change: float,
) -> int:
    """Minimise the 0-d ``loss_fn()`` over ``params`` (leaf tensors, updated in place) with
    ``torch.optim.LBFGS`` (lr 1, strong-Wolfe line search), at most ``max_iter`` iterations and
    torch's stopping tolerances; gradients on even under ``torch.no_grad``. Returns the
    iterations run."""
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return int(optimizer.state[params[0]].get("n_iter", 0))
