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


def _exact(f: Tensor, y: Tensor, create_graph: bool) -> Tensor | None:
    """``exact_divergence``, or None when f has no autograd path to y at all."""
    div = torch.zeros(len(y), dtype=y.dtype, device=y.device)
    for i in range(y.shape[1]):
        (g,) = torch.autograd.grad(
            f[:, i].sum(), y, create_graph=create_graph, retain_graph=True, allow_unused=True
        )
        if g is None:  # f[:, i] is a view of f: None for one column means None for all
            return None
        div = div + g[:, i]
    return div


def _hutchinson(f: Tensor, y: Tensor, v: Tensor, create_graph: bool) -> Tensor | None:
    """``hutchinson_divergence``, or None when f has no autograd path to y at all."""
    (vjp,) = torch.autograd.grad(
        f, y, v, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return None if vjp is None else (vjp * v).sum(1)


def _connected(f: Tensor, div: Tensor | None) -> Tensor:
    if div is None:
        raise ValueError(
            "f must have been computed from y by autograd, got a tensor with no gradient path to "
            f"y (requires_grad={f.requires_grad}: detached, or computed outside torch)"
        )
    return div


def exact_divergence(f: Tensor, y: Tensor, create_graph: bool) -> Tensor:
    """tr(∂f/∂y) per sample, one backward pass per dimension. f, y: (B, D) -> (B,).

    f must have been computed from y (requires_grad; else a ValueError naming f); create_graph:
    keep the graph of the result (True while training, so the log-likelihood's gradient reaches
    the field's parameters).
    """
    return _connected(f, _exact(f, y, create_graph) if f.requires_grad else None)


def hutchinson_divergence(f: Tensor, y: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """vᵀ(∂f/∂y)v per sample from one vector-Jacobian product; E_v[·] = tr(∂f/∂y).

    f, y: (B, D), f computed from y (else a ValueError naming f); v: (B, D) probe with
    E[vvᵀ] = I (Rademacher or Gaussian); create_graph: keep the graph of the result (True while
    training). Returns (B,).
    """
    return _connected(f, _hutchinson(f, y, v, create_graph) if f.requires_grad else None)


def _no_path_divergence(fn: Callable[[Tensor], Tensor], f: Tensor, y: Tensor, name: str) -> Tensor:
    """The divergence of an output f = fn(y) with no autograd path to y: 0 when fn is constant in
    y (the same output at y + 1: e.g. torch.zeros_like(y), or a function of t alone), else a
    ValueError naming ``name`` (detached, or computed outside torch: autograd cannot see its
    Jacobian). One extra call of fn and one host sync, on this branch only."""
    with torch.no_grad():
        shifted = fn(y.detach() + 1)
    if isinstance(shifted, Tensor) and torch.equal(shifted, f.detach()):
        return torch.zeros(len(y), dtype=y.dtype, device=y.device)
    raise ValueError(
        f"{name} must be differentiable in its input x by autograd, got an output that varies with "
        "x but has no gradient path to it (detached, or computed outside torch, e.g. in numpy): "
        "the divergence tr(∂f/∂x) needs its Jacobian"
    )


def autograd_divergence(
    fn: Callable[[Tensor], Tensor],
    y: Tensor,
    probe: Tensor | None,
    create_graph: bool,
    name: str = "the field",
) -> tuple[Tensor, Tensor]:
    """f = fn(y) (B, D) and its divergence (B,) by autograd: exact (probe None) or Hutchinson's
    vᵀ(∂f/∂y)v (probe v (B, D)). y: (B, D). create_graph: keep the graphs of f and the
    divergence (True while training); otherwise both come back detached.

    name: what the user calls fn, for the errors. fn must return a tensor shaped like y; an
    output with no autograd path to y has divergence 0 when it is constant in y (checked by one
    extra call at y + 1), else raises a ValueError naming ``name`` (autograd's "element 0 of
    tensors does not require grad" before). Metadata only on the usual path: no host sync."""
    with torch.enable_grad():
        if not y.requires_grad:
            y = y.detach().requires_grad_(True)
        f = fn(y)
        if not isinstance(f, Tensor) or f.shape != y.shape:
            got = f"shape {tuple(f.shape)}" if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(
                f"{name} must return a tensor of its input's shape {tuple(y.shape)}, got {got}"
            )
        div = None
        if f.requires_grad:
            if probe is None:
                div = _exact(f, y, create_graph)
            else:
                div = _hutchinson(f, y, probe, create_graph)
        if div is None:
            div = _no_path_divergence(fn, f, y, name)
    if not create_graph:
        f, div = f.detach(), div.detach()
    return f, div
