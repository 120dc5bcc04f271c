"""A fused input gradient for MLP energies, the common case of EBM training.

For E(x) = w_Lᵀ a_{L−1} + b_L with a_k = φ(W_k a_{k−1} + b_k), the gradient is one forward sweep
that keeps the pre-activations and one backward sweep of matrix products:
    g_{L−1} = w_L ⊙ φ'(h_{L−1}),  g_{k−1} = (g_k W_k) ⊙ φ'(h_{k−1}),  ∇ₓE = g_1 W_1.
Compared with autograd this skips the last layer's forward product, the graph bookkeeping and the
weight-gradient paths, and uses one fused kernel per activation derivative. Anything else falls back to
autograd, so the result is always ∇ₓE.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

_aten = torch.ops.aten

# activation -> (forward φ, backward (g, h, φ(h)) -> g ⊙ φ'(h)), each one fused kernel
_ACTIVATIONS: dict[type, tuple[Callable, Callable]] = {
    nn.SiLU: (nn.functional.silu, lambda g, h, a: _aten.silu_backward(g, h)),
    nn.Tanh: (torch.tanh, lambda g, h, a: _aten.tanh_backward(g, a)),
    nn.Sigmoid: (torch.sigmoid, lambda g, h, a: _aten.sigmoid_backward(g, a)),
    nn.ReLU: (torch.relu, lambda g, h, a: _aten.threshold_backward(g, h, 0)),
    nn.Softplus: (nn.functional.softplus, lambda g, h, a: _aten.softplus_backward(g, h, 1, 20)),
}


def _activation(module: nn.Module):
    if isinstance(module, nn.Softplus) and (module.beta != 1 or module.threshold != 20):
        return None
    return _ACTIVATIONS.get(type(module))


def mlp_input_gradient(energy: object) -> Callable[[Tensor], Tensor] | None:
    """``grad(x) -> ∇ₓE(x)`` for an unconditional ``MLPEnergy`` or an ``nn.Sequential`` of
    Linear layers with SiLU/Tanh/Sigmoid/ReLU/Softplus between them and one output; else None.

    x: (B, D) -> (B, D). The weights are read at call time, so training updates are seen.
    """
    from ebm.energies import MLPEnergy

    if isinstance(energy, MLPEnergy):
        if energy.cond_dim:
            return None
        net = energy.net
    elif isinstance(energy, nn.Sequential):
        net = energy
    else:
        return None
    layers = list(net)
    linears, activations = layers[0::2], layers[1::2]
    if (
        len(layers) % 2 == 0
        or not all(type(m) is nn.Linear for m in linears)
        or linears[-1].out_features != 1
        or any(_activation(m) is None for m in activations)
    ):
        return None
    acts = [_activation(m) for m in activations]
    output_based = [isinstance(m, (nn.Tanh, nn.Sigmoid)) for m in activations]
    if not acts:  # a single affine layer: the gradient is its weight row
        return lambda x: linears[0].weight.expand_as(x)

    def grad(x: Tensor) -> Tensor:
        saved = []  # (h_k, φ(h_k)) per hidden layer
        a = x
        last = len(acts) - 1
        for k, (lin, (forward, _)) in enumerate(zip(linears[:-1], acts)):
            h = nn.functional.linear(a, lin.weight, lin.bias)
            # the top activation itself is needed only where its derivative is written with it
            a = forward(h) if k < last or output_based[k] else None
            saved.append((h, a))
        g = linears[-1].weight  # (1, H): ∂E/∂a_{L−1}, broadcast over the batch
        for k in reversed(range(len(acts))):
            h, a = saved[k]
            g = acts[k][1](g, h, a)  # ∂E/∂h_k
            g = g @ linears[k].weight  # ∂E/∂a_{k−1}
        return g

    return grad
