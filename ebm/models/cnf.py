"""A continuous normalising flow (Chen et al. 2018; FFJORD, Grathwohl et al. 2019).

dy/dt = f_θ(y, t) carries base samples z = y(0) ~ N(0, I) to data y(1). Along a trajectory the
log-density obeys d log p(y(t))/dt = −tr(∂f/∂y), so
    log p(y) = log N(y(0); 0, I) − ∫₀¹ tr(∂f/∂y(t)) dt,
an exact likelihood (flows are explicit density models; the Warwick slides' "implicit" is wrong),
computed by integrating the augmented state (y, Δ) from t = 1 back to t = 0 with torchdiffeq.
The trace is exact in low dimension and Hutchinson's unbiased estimate vᵀ(∂f/∂y)v, v ~ N(0, I),
otherwise. With the default field (an MLP of Linear layers and Tanh/SiLU/Sigmoid, ``velocity``
not overridden, no hook on the field) both are computed in forward mode alongside the field: the
D directions of the identity (or the probe v) are carried through the layers, so the exact trace
costs one forward pass of D·B rows instead of D backward passes (0.66× the time of FFJORD's
loop at D = 16 in benchmarks/results/cnf.json). Any other field goes through autograd: one
backward pass per dimension, or one vector-Jacobian product. ``energy(y) = −log p(y)``: low = likely.

``objective="flow_matching"`` trains the same field without any ODE solve: conditional flow
matching (Lipman et al. 2023) regresses f_θ on the velocity of a straight path from a base draw
x₀ ~ N(0, I) (t = 0) to a data point x₁ (t = 1). The likelihood afterwards is the same exact
``log_prob``: only the training loss changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_module_input,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    check_shape,
)
from ebm.energies import mlp
from ebm.inference.ode import (
    DEFAULT_MAX_NUM_STEPS,
    FIXED_GRID_METHODS,
    NonFiniteODEError,
    check_ode_args,
    odeint,
)
from ebm.models._batch import batch_data
from ebm.models._divergence import (
    _chain_divergence,
    _mlp_chain,
    autograd_divergence,
    exact_divergence,
    hutchinson_divergence,
)

__all__ = ["CNF", "exact_divergence", "hutchinson_divergence"]


def _ot_permutation(x0: Tensor, x1: Tensor) -> Tensor:
    """The exact minibatch optimal-transport pairing: perm (B,) minimising Σ_j ‖x0[perm[j]] − x1[j]‖².

    x0, x1: (B, D). Solved by scipy's ``linear_sum_assignment`` (shortest augmenting paths,
    O(B³)) on the (B, B) squared-distance cost in float64, on the CPU: one host transfer per call;
    a non-finite cost (NaN or inf data) leaves the order as it is, so the loss is NaN. Returns a
    long tensor on x0's device. The solver's time is almost all of it (the cost matrix and the
    transfer are ~2%); it is given the cost with the base draws as rows, which it solves ~30%
    faster than the transpose on Gaussian-to-data batches (the same optimum).
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment  # scipy only when OT pairing is used

    # cost[j, i] = ‖x1[j] − x0[i]‖², in float64 so that large finite data cannot overflow it
    cost = torch.cdist(x1.detach().double(), x0.detach().double()).pow(2)
    cost = np.ascontiguousarray(cost.cpu().numpy().T)
    if not np.isfinite(cost).all():  # NaN/inf data (a forward pass does not check): no pairing,
        return torch.arange(len(x0), device=x0.device)  # the loss then carries the NaN
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[cols] = rows  # x0[rows[k]] is paired with x1[cols[k]]
    return torch.from_numpy(perm).to(x0.device)


class CNF(nn.Module):
    """A CNF on vectors y (B, dim) with an MLP field f_θ([y, t]).

    divergence: "exact", "hutchinson" or "auto" (exact when dim <= 8).
    method, rtol, atol, step_size: the torchdiffeq solver, one of ``ebm.inference.ode.METHODS``
    (step_size only for fixed-grid methods such as "rk4"). max_num_steps: the step budget of
    every solve; past it ``ebm.inference.ode.StepBudgetExceeded`` is raised instead of hanging.
    dim: the data dimension D >= 1. hidden, activation: the field's MLP widths and activation
    class (smooth activations: the ODE needs them). lr: Adam's learning rate (> 0).
    objective: the training loss of ``training_step``. "likelihood" (default): the exact negative
    log-likelihood through the ODE (FFJORD). "flow_matching": conditional flow matching (Lipman
    et al. 2023), no ODE solve while training; see ``flow_matching_loss``.
    pairing: how flow matching pairs base draws x₀ with the batch's data x₁: "independent" (each
    x₁ with a fresh x₀, I-CFM) or "ot" (the base draws permuted by the exact minibatch optimal
    transport assignment on ‖x₀ − x₁‖², OT-CFM; Tong et al. 2024, Pooladian et al. 2023). Used
    only with ``objective="flow_matching"``.
    sigma_min: the width of the conditional path at the data end (0 <= sigma_min < 1): 0 gives
    the straight line x_t = (1 − t)x₀ + t x₁, whose t = 1 marginal is the data itself.
    Data is cast to the parameters' dtype (float64 data into a float32 model runs in float32).
    ``energy(y) = −log p(y)``: low = likely.

    >>> import torch
    >>> cnf = CNF(2, hidden=(8,), method="rk4", step_size=0.25)
    >>> cnf.sample(4, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
    >>> cnf.log_prob(torch.zeros(3, 2)).shape  # (B,) exact log-density (nats)
    torch.Size([3])
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        divergence: str = "auto",
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        step_size: float | None = None,
        lr: float = 1e-3,
        max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
        objective: str = "likelihood",
        pairing: str = "independent",
        sigma_min: float = 0.0,
    ):
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        hidden = check_shape("hidden", hidden, allow_empty=True)
        check_choice("divergence", divergence, ("auto", "exact", "hutchinson"))
        self.divergence = (
            ("exact" if dim <= 8 else "hutchinson") if divergence == "auto" else divergence
        )
        check_ode_args(method, rtol, atol, None, max_num_steps)
        if step_size is not None:
            check_positive("step_size", step_size)
            if method not in FIXED_GRID_METHODS:
                raise ValueError(
                    f"step_size applies to the fixed-grid methods {FIXED_GRID_METHODS}, "
                    f"got method={method!r} (adaptive: it sets its own steps from rtol/atol)"
                )
        self.method, self.rtol, self.atol, self.step_size = method, rtol, atol, step_size
        self.max_num_steps = max_num_steps
        self.lr = check_positive("lr", lr)
        self.objective = check_choice("objective", objective, ("likelihood", "flow_matching"))
        self.pairing = check_choice("pairing", pairing, ("independent", "ot"))
        self.sigma_min = check_real("sigma_min", sigma_min, 0.0, 1.0, high_inclusive=False)
        self.field = mlp([dim + 1, *hidden, dim], activation)

    def velocity(self, t: Tensor, y: Tensor) -> Tensor:
        """f_θ(y, t): y (B, dim), t a scalar (or (B, 1), one time per row) -> (B, dim).

        y and t may be array-likes (t a number); integers and bools are promoted, floating values
        cast to the parameters' dtype. The ODE's vector field: no value checks, no host sync.
        """
        y = as_module_input("y", y, self)
        t = as_module_input("t", t, self)
        return self.field(torch.cat([y, t.to(y).expand(len(y), 1)], dim=1))

    def _solve(self, func, state, t0: float, t1: float, like: Tensor):
        span = torch.tensor([t0, t1], dtype=like.dtype, device=like.device)
        options = {"step_size": self.step_size} if self.step_size is not None else None
        out = odeint(
            func, state, span, self.method, self.rtol, self.atol, options, self.max_num_steps
        )
        return tuple(s[-1] for s in out) if isinstance(out, tuple) else out[-1]

    def _data(self, y: object, finite: bool) -> Tensor:
        """y as (B, dim) in the parameters' dtype; NaN/inf refused when ``finite``."""
        p = next(self.parameters())
        ready = type(y) is Tensor and y.ndim == 2 and y.dtype == p.dtype and y.device == p.device
        if finite or not ready:  # a ready batch on the training path: nothing to convert
            y = as_float_tensor("y", y, ndim=2, finite=finite, dtype=p.dtype, device=p.device)
        if y.shape[1] != self.dim or y.shape[0] < 1:
            raise ValueError(f"y must have shape (B, {self.dim}) with B >= 1, got {tuple(y.shape)}")
        return y

    def log_prob(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Exact log p(y) (B,) (Hutchinson: an unbiased estimate). Differentiable in training.

        y: (B, dim) finite data (a tensor or an array-like), cast to the parameters' dtype.
        generator: the source of Hutchinson's probe v ~ N(0, I) (None: torch's global RNG);
        unused with the exact divergence. A subclass's ``velocity`` is differentiated by
        autograd: one constant in y has divergence 0, one that varies with y with no gradient
        path to it (detached, computed in numpy) raises a ValueError naming ``velocity``.
        """
        check_generator("generator", generator)
        return self._log_prob(self._data(y, finite=True), generator)

    def _log_prob(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        create_graph = torch.is_grad_enabled()
        v = None
        if self.divergence == "hutchinson":  # one probe per solve (FFJORD)
            v = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        # the default field (an MLP chain, velocity not overridden): forward-mode divergence
        own_velocity = getattr(self.velocity, "__func__", None) is CNF.velocity
        chain = _mlp_chain(self.field) if own_velocity else None

        def augmented(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            y_t = state[0]
            if chain is not None:
                x = torch.cat([y_t, t.to(y_t).expand(len(y_t), 1)], dim=1)
                return _chain_divergence(*chain, x, self.dim, v)
            return autograd_divergence(
                lambda y: self.velocity(t, y), y_t, v, create_graph, "velocity"
            )

        delta0 = torch.zeros(len(y), dtype=y.dtype, device=y.device)
        z, delta = self._solve(augmented, (y, delta0), 1.0, 0.0, y)
        log_base = -0.5 * z.pow(2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_base + delta  # Δ(0) = −∫₀¹ tr(∂f/∂y) dt

    def energy(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """−log p(y), (B,): low = likely. y: (B, dim) finite, cast to the parameters' dtype.

        generator: Hutchinson's probe source, as for ``log_prob`` (None: torch's global RNG).
        """
        return -self.log_prob(y, generator)

    forward = energy

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples (n, dim): z ~ N(0, I) carried from t = 0 to t = 1.

        n: an int >= 1. generator: the source of z (None: torch's global RNG), on the model's
        device.
        """
        check_int("n", n, minimum=1)
        check_generator("generator", generator)
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator, device=p.device, dtype=p.dtype)
        with torch.no_grad():
            return self._solve(self.velocity, z, 0.0, 1.0, z)

    def flow_matching_loss(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The conditional flow-matching loss (Lipman et al. 2023) on data y, a scalar.

        With x₁ = y (B, dim) the data (t = 1, the end ``sample`` reaches), x₀ ~ N(0, I) the base
        (t = 0), t ~ U(0, 1) per row and σ = ``sigma_min``:
            x_t = (1 − (1 − σ)t) x₀ + t x₁,   u = x₁ − (1 − σ) x₀ = dx_t/dt,
            loss = mean over rows of ‖f_θ(x_t, t) − u‖²  (summed over the dim coordinates).
        Its minimiser is the marginal velocity E[u | x_t, t], whose flow carries N(0, I) to the
        data (σ = 0) or to the data blurred by N(0, σ²I); ``log_prob`` then gives the exact
        log-likelihood of the learned flow through the same ODE. ``pairing="ot"`` permutes the
        x₀ draws by the exact minibatch OT assignment first (one CPU call of scipy's
        ``linear_sum_assignment``, O(B³), per batch).
        y: (B, dim) finite data, cast to the parameters' dtype. generator: the source of x₀ and t
        (None: torch's global RNG), on the model's device. Differentiable in the parameters.
        """
        y = self._data(y, finite=True)
        return self._flow_matching_loss(y, check_generator("generator", generator, y.device))

    def _flow_matching_loss(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        t = torch.rand(len(x1), 1, generator=generator, device=x1.device, dtype=x1.dtype)
        if self.pairing == "ot":
            x0 = x0[_ot_permutation(x0, x1)]
        if self.sigma_min == 0.0:  # the same values without the multiplications by 1
            x_t = (1.0 - t) * x0 + t * x1  # (B, dim)
            u = x1 - x0  # (B, dim): the conditional path's velocity
        else:
            shrink = 1.0 - self.sigma_min
            x_t = (1.0 - shrink * t) * x0 + t * x1
            u = x1 - shrink * x0
        if getattr(self.velocity, "__func__", None) is CNF.velocity:
            # the default field: x_t and t already have the parameters' dtype and device, so
            # velocity's casts would be no-ops; skip its per-call overhead on the hot path
            v = self.field(torch.cat([x_t, t], dim=1))
        else:
            v = self.velocity(t, x_t)  # f_θ(x_t, t) with one t per row
        return (v - u).pow(2).sum(1).mean()

    def _nll(self, y: Tensor) -> Tensor:
        """The mean −log p(y) of a training or validation batch, NaN (as a forward pass propagates
        it, and as the fixed-grid methods give it) when y holds NaN or inf: an adaptive solver's
        step size collapses on a non-finite state (``NonFiniteODEError``), so that error, and
        only it, is followed by one host check of y; with a finite y it is re-raised (the field
        broke down)."""
        try:
            return -self._log_prob(y).mean()  # no host sync per step
        except NonFiniteODEError:
            if bool(torch.isfinite(y).all()):
                raise
        # NaN, with the graph of the parameters that a propagated NaN would have (NaN gradients)
        return torch.stack([p.sum() for p in self.parameters()]).sum() * float("nan")

    def training_step(self, batch) -> Tensor:
        """batch: y (B, dim) (a tensor or numpy array) or [y, ...]. Returns the loss of
        ``objective``: the mean negative log-likelihood (nats) or the flow-matching loss (x₀ and
        t from torch's global RNG). A forward pass: no value checks, a batch holding NaN or inf
        gives a NaN loss (with any ``method``), as the other models' training steps do."""
        y = self._data(batch_data(batch), finite=False)
        if self.objective == "flow_matching":
            return self._flow_matching_loss(y)
        return self._nll(y)

    def validation_step(self, batch) -> dict[str, Tensor]:
        """batch: y (B, dim) or [y, ...]. Returns {"nll": the mean −log p(y)} with
        ``objective="likelihood"``, {"flow_matching": the loss with x₀ and t from a generator
        seeded 0 (the same draws every call, so epochs compare)} otherwise; no gradients. A batch
        holding NaN or inf gives NaN, as in ``training_step``."""
        y = self._data(batch_data(batch), finite=False)
        with torch.no_grad():
            if self.objective == "flow_matching":
                g = torch.Generator(device=y.device).manual_seed(0)
                return {"flow_matching": self._flow_matching_loss(y, g)}
            return {"nll": self._nll(y)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on every parameter with ``lr``."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)
