"""The divergence tr(∂f/∂y) of a vector field, as the instantaneous change of variables needs it.

One home for the exact and Hutchinson divergences that ``CNF.log_prob`` and ``Diffusion.log_prob``
integrate along their ODEs (d log p(y(t))/dt = −tr(∂f/∂y)):

- ``exact_divergence`` / ``hutchinson_divergence``: autograd on any field (D backward passes, or
  one vector-Jacobian product vᵀ(∂f/∂y)v with E[vvᵀ] = I); ``autograd_divergence`` wraps a field
  call with either.
- ``_mlp_chain`` / ``_chain_divergence``: forward mode through ``ebm.energies.mlp``'s chain of
  Linear layers and Tanh/Sigmoid/SiLU, carrying the D directions of the identity (or the probe)
  alongside the forward pass: the exact trace in one pass of D·B rows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["exact_divergence", "hutchinson_divergence", "autograd_divergence"]


_aten = torch.ops.aten


def _silu_tangent(u: Tensor, h: Tensor, a: Tensor) -> Tensor:
    # σ(h)(1 + h(1 − σ(h))) written out: aten's silu_backward has no derivative of its own
    s = torch.sigmoid(h)
    return u * (s * (1 + h * (1 - s)))


# elementwise activations and their tangent maps (u, h, a = σ(h)) -> u ⊙ σ'(h); tanh and sigmoid
# use their own (twice-differentiable) backward kernels: one fused kernel each
_TANGENTS = {
    nn.Tanh: lambda u, h, a: _aten.tanh_backward(u, a),
    nn.Sigmoid: lambda u, h, a: _aten.sigmoid_backward(u, a),
    nn.SiLU: _silu_tangent,
}


def _no_hooks(module: nn.Module) -> bool:
    return not (module._forward_hooks or module._forward_pre_hooks)


def _mlp_chain(field: nn.Module) -> tuple[list[nn.Linear], list[nn.Module]] | None:
    """(linears, activations) when ``field`` is ebm.energies.mlp's Linear/activation chain with
    activations of ``_TANGENTS`` and no hooks on the Sequential itself; else None."""
    if type(field) is not nn.Sequential or not _no_hooks(field) or len(field) % 2 != 1:
        return None
    linears, acts = list(field[0::2]), list(field[1::2])
    if not all(type(m) is nn.Linear for m in linears):
        return None
    if not all(type(m) in _TANGENTS for m in acts):
        return None
    return linears, acts


def _chain_divergence(
    linears: list[nn.Linear], acts: list[nn.Module], x: Tensor, dim: int, probe: Tensor | None
) -> tuple[Tensor, Tensor]:
    """f = field(x) and tr(∂f/∂y) (probe None) or vᵀ(∂f/∂y)v (probe v (B, dim)), y = x[:, :dim].

    Forward mode through the chain: the tangents U (B, K, H) of K directions (the identity's D
    rows, or the one probe) ride along the forward pass, U ← (U Wᵀ) ⊙ σ'(h) per layer, so the
    exact trace costs one forward pass with K·B rows in the matrix products instead of D
    backward passes with their graphs; the result is differentiable by first-order autograd.
    """
    w0 = linears[0].weight[:, :dim]  # (H, dim): the y-columns of the first layer
    u = w0.t().unsqueeze(0) if probe is None else (probe @ w0.t()).unsqueeze(1)  # (B|1, K, H)
    a = x
    for i, lin in enumerate(linears[:-1]):
        h = lin(a)
        a = acts[i](h)
        if i > 0:
            u = u @ lin.weight.t()
        tangent = _TANGENTS[type(acts[i])]
        if u.shape[0] != len(x):  # the identity's rows, shared by the batch
            u = u.expand(len(x), -1, -1)
        u = tangent(u, h.unsqueeze(1), a.unsqueeze(1))
    last = linears[-1]
    f = last(a)
    if len(linears) == 1:  # no hidden layer: the Jacobian is w0
        if probe is None:
            return f, torch.diagonal(w0).sum().expand(len(x))
        return f, ((probe @ w0.t()) * probe).sum(1)
    if probe is None:
        return f, (u * last.weight).sum((1, 2))  # Σ_i Σ_k W_L[i, k] U[b, i, k]
    return f, ((u.squeeze(1) @ last.weight.t()) * probe).sum(1)


def exact_divergence(f: Tensor, y: Tensor, create_graph: bool) -> Tensor:
    """tr(∂f/∂y) per sample, one backward pass per dimension. f, y: (B, D) -> (B,).

    f must have been computed from y (requires_grad); create_graph: keep the graph of the result
    (True while training, so the log-likelihood's gradient reaches the field's parameters).
    """
    div = torch.zeros(len(y), dtype=y.dtype, device=y.device)
    for i in range(y.shape[1]):
        (g,) = torch.autograd.grad(f[:, i].sum(), y, create_graph=create_graph, retain_graph=True)
        div = div + g[:, i]
    return div


def hutchinson_divergence(f: Tensor, y: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """vᵀ(∂f/∂y)v per sample from one vector-Jacobian product; E_v[·] = tr(∂f/∂y).

    f, y: (B, D), f computed from y; v: (B, D) probe with E[vvᵀ] = I (Rademacher or Gaussian);
    create_graph: keep the graph of the result (True while training). Returns (B,).
    """
    (vjp,) = torch.autograd.grad(f, y, v, create_graph=create_graph, retain_graph=True)
    return (vjp * v).sum(1)


def autograd_divergence(
    fn: Callable[[Tensor], Tensor], y: Tensor, probe: Tensor | None, create_graph: bool
) -> tuple[Tensor, Tensor]:
    """f = fn(y) (B, D) and its divergence (B,) by autograd: exact (probe None) or Hutchinson's
    vᵀ(∂f/∂y)v (probe v (B, D)). y: (B, D). create_graph: keep the graphs of f and the
    divergence (True while training); otherwise both come back detached."""
    with torch.enable_grad():
        if not y.requires_grad:
            y = y.detach().requires_grad_(True)
        f = fn(y)
        if probe is None:
            div = exact_divergence(f, y, create_graph)
        else:
            div = hutchinson_divergence(f, y, probe, create_graph)
    if not create_graph:
        f, div = f.detach(), div.detach()
    return f, div
