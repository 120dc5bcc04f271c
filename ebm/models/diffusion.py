"""A denoising diffusion model (DDPM, Ho et al. 2020) with ε-prediction.

Forward process: q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I), hence in closed form
    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),  ᾱ_t = ∏_{s≤t} (1 − β_s).
A network ε_θ(x_t, t) learns the noise: loss = E‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².

Sampling starts from x_T ~ N(0, I), which is only right if ᾱ_T ≈ 0. The Warwick tutorial's
schedule (T = 50, β linear up to 0.02) has ᾱ_T = ∏(1 − β_t) ≈ exp(−Σβ) ≈ 0.6: its x_T still
carries 77 % (√0.6) of the data signal, so starting from pure noise samples the wrong thing. Its
one-step generation x = x_T − ε_θ(x_T, T) is not the DDPM sampler either. Here the schedule is
checked (ᾱ_T ≤ ``max_alpha_bar_T``) and the default is the DDPM one, T = 1000 (ᾱ_T ≈ 4e−5).

Three samplers: ancestral (the DDPM reverse chain), DDIM (Song, Meng & Ermon 2021: a fixed
sub-sequence of the steps, deterministic at eta = 0) and the probability-flow ODE, integrated with
torchdiffeq in DDIM's variables y = x/√ᾱ, σ = √((1 − ᾱ)/ᾱ), where it reads dy/dσ = ε_θ(x, t)
(DDIM with eta = 0 is Euler's method on it, one network call per step).

``log_prob`` is that ODE's exact log-density (Song et al. 2021, appendix D.2): the model that
``sample(method="ode")`` draws from, integrated from the data to x_T with the divergence of its
drift (the exact, Hutchinson and forward-mode divergences of ``ebm.models._divergence``, shared
with ``CNF``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_index_tensor,
    as_module_input,
    check_choice,
    check_generator,
    check_int,
    check_positive,
    check_real,
    check_same_shape,
    check_shape,
)
from ebm.energies import mlp
from ebm.inference.ode import (
    DEFAULT_MAX_NUM_STEPS,
    NonFiniteODEError,
    check_ode_args,
    odeint,
    overflow_safe_norm,
)
from ebm.models._batch import batch_data
from ebm.models._divergence import _chain_divergence, _mlp_chain, autograd_divergence

__all__ = ["Diffusion", "linear_schedule", "cosine_schedule", "check_schedule"]


def linear_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """β_1..β_T linearly spaced (Ho et al. 2020), beta_start and beta_end in (0, 1). (T,) float64"""
    check_int("T", T, minimum=1)
    check_real("beta_start", beta_start, 0, 1, low_inclusive=False, high_inclusive=False)
    check_real("beta_end", beta_end, 0, 1, low_inclusive=False, high_inclusive=False)
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """β_t from ᾱ(t) = cos²(π/2 · (t/T + s)/(1 + s)) (Nichol & Dhariwal 2021), s >= 0, each β
    clipped at max_beta in (0, 1). (T,) float64"""
    check_int("T", T, minimum=1)
    check_real("s", s, 0)
    check_real("max_beta", max_beta, 0, 1, low_inclusive=False, high_inclusive=False)
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


_SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}


def check_schedule(betas: Tensor, max_alpha_bar_T: float = 1e-2) -> Tensor:
    """Validate β_1..β_T (T,): each in (0, 1), and ᾱ_T ≤ max_alpha_bar_T (in (0, 1]) so that
    x_T ≈ N(0, I). betas: a tensor or an array-like; returned as a tensor."""
    check_real("max_alpha_bar_T", max_alpha_bar_T, 0, 1, low_inclusive=False)
    betas = as_float_tensor("betas", betas, ndim=1)
    if len(betas) < 1 or not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError("betas must be a non-empty 1-D tensor with every value in (0, 1)")
    alpha_bar_T = float(torch.prod(1 - betas.double()))
    if alpha_bar_T > max_alpha_bar_T:
        raise ValueError(
            f"the schedule leaves alpha_bar_T = {alpha_bar_T:.3g} > {max_alpha_bar_T}: x_T is not "
            "close to N(0, I), so sampling from pure noise is wrong (the Warwick tutorial's T = 50 "
            "with beta up to 0.02 gives about 0.6). Use more steps or larger betas."
        )
    return betas


class Diffusion(nn.Module):
    """DDPM on vectors x (B, dim) with an MLP ε_θ([x, time features]).

    dim: the data dimension D >= 1.
    T, schedule ("linear" or "cosine") or explicit ``betas`` (T,): the noise schedule, validated
    by ``check_schedule``. max_alpha_bar_T: the largest ᾱ_T accepted (in (0, 1]; default 1e-2),
    so that x_T is close to the N(0, I) that sampling starts from. hidden: the MLP widths;
    time_features: the number of sinusoidal frequencies of the time embedding; lr: Adam's
    learning rate.

    >>> import torch
    >>> model = Diffusion(2, hidden=(8,), T=10, schedule="cosine")
    >>> model.sample(4, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (128, 128, 128),
        T: int = 1000,
        schedule: str = "linear",
        betas: Tensor | None = None,
        time_features: int = 16,
        lr: float = 1e-3,
        max_alpha_bar_T: float = 1e-2,
    ):
        super().__init__()
        check_int("dim", dim, minimum=1)
        hidden = check_shape("hidden", hidden, allow_empty=True)
        check_int("time_features", time_features, minimum=1)
        check_positive("lr", lr)
        if betas is None:
            check_choice("schedule", schedule, tuple(_SCHEDULES))
            check_int("T", T, minimum=1)
            betas = _SCHEDULES[schedule](T)
        betas = as_float_tensor("betas", betas, ndim=1, dtype=torch.float64)
        betas = check_schedule(betas, max_alpha_bar_T)
        self.dim, self.T, self.lr = dim, len(betas), check_positive("lr", lr)
        alpha_bars = torch.cumprod(1 - betas, 0)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alpha_bars", alpha_bars.float())
        # log σ_t of DDIM's variables, increasing in t: maps an ODE time back to a step index
        self.register_buffer("log_sigmas", (0.5 * ((1 - alpha_bars) / alpha_bars).log()).float())
        freqs = torch.exp(-math.log(1000.0) * torch.arange(time_features) / time_features)
        self.register_buffer("freqs", freqs)
        self.net = mlp([dim + 2 * time_features, *hidden, dim], nn.SiLU)

    # ---- the network and the forward process ------------------------------------------------
    def _input(self, name: str, x: object) -> Tensor:
        """A (B, dim) batch in the parameters' dtype (array-likes accepted, ints promoted)."""
        x = as_module_input(name, x, self, ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (B, {self.dim}), got {tuple(x.shape)}")
        return x

    def eps_model(self, x: Tensor, t: Tensor) -> Tensor:
        """ε_θ(x_t, t): x (B, dim), t (B,) step indices in [1, T] (may be fractional) -> (B, dim).

        x and t may be array-likes; integers and bools are promoted and floating values cast to
        the parameters' dtype (an integer x never truncates the time features). A forward pass:
        no value checks, NaN propagates to its row.
        """
        x = self._input("x", x)
        t = as_module_input("t", t, self)
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"t must have shape ({x.shape[0]},) like x's rows, got {tuple(t.shape)}"
            )
        return self._eps(x, t)

    def _eps_fn(self):
        """The noise predictor the training step and samplers call: ``eps_model`` when a subclass
        overrides it, else ``_eps`` (the same network without the per-call input handling)."""
        own = getattr(self.eps_model, "__func__", None) is Diffusion.eps_model
        return self._eps if own else self.eps_model

    def _eps_at_step(self):
        """eps(x, t) for a batch that shares one step t (a 0-d tensor or a number), as the
        samplers call it. With the default network (a plain Sequential starting with a Linear,
        no hooks) the time features enter as a bias: W [x, sin, cos] + b = W_x x + (W_τ τ(t) + b),
        so each call computes τ(t) once instead of per row and skips the concatenation; the same
        numbers up to rounding. Otherwise (a subclass's ``eps_model``, another network) the
        per-row call."""
        eps_fn, net = self._eps_fn(), self.net
        plain = (
            eps_fn == self._eps
            and type(net) is nn.Sequential
            and len(net) > 0
            and type(net[0]) is nn.Linear
            and net[0].bias is not None
            and not any(m._forward_hooks or m._forward_pre_hooks for m in (net, net[0]))
        )
        if not plain:

            def per_row(x: Tensor, t) -> Tensor:
                return eps_fn(x, torch.as_tensor(t, device=x.device).expand(len(x)))

            return per_row
        first, rest, dim = net[0], net[1:], self.dim

        def shared(x: Tensor, t) -> Tensor:
            angles = torch.as_tensor(t, dtype=x.dtype, device=x.device) * self.freqs.to(x.dtype)
            bias = torch.addmv(
                first.bias, first.weight[:, dim:], torch.cat([angles.sin(), angles.cos()])
            )
            return rest(torch.addmm(bias, x, first.weight[:, :dim].t()))

        return shared

    def _eps(self, x: Tensor, t: Tensor) -> Tensor:
        """``eps_model`` without the input handling: x (B, dim) in the parameters' dtype, t (B,)."""
        angles = t.to(x.dtype).unsqueeze(1) * self.freqs.to(x.dtype)
        return self.net(torch.cat([x, angles.sin(), angles.cos()], dim=1))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, the closed-form forward marginal.

        x0, noise: (B, dim), array-likes accepted, cast like ``eps_model``'s x; t: (B,) integer
        step indices in [1, T]. Array-like t is range-checked (ValueError); a tensor t is not read
        on the host (a forward pass: no sync), and a row whose step is outside [1, T] gets NaN
        rather than another step's ᾱ. NaN in x0 or noise propagates to its row.
        """
        x0, noise = self._input("x0", x0), self._input("noise", noise)
        check_same_shape(x0=x0, noise=noise)
        if not isinstance(t, Tensor):
            t = as_index_tensor("t", t, ndim=1)  # on the host: checked
            if t.numel() and not (int(t.min()) >= 1 and int(t.max()) <= self.T):
                raise ValueError(
                    f"t must hold step indices in [1, {self.T}], got min {int(t.min())}, "
                    f"max {int(t.max())}"
                )
            t = t.to(x0.device)
        elif t.is_floating_point() or t.is_complex():
            raise ValueError(f"t must hold integer step indices in [1, {self.T}], got {t.dtype}")
        if t.shape != (x0.shape[0],):
            raise ValueError(
                f"t must have shape ({x0.shape[0]},) like x0's rows, got {tuple(t.shape)}"
            )
        ab = self.alpha_bars[(t - 1).clamp(0, self.T - 1)].to(x0.dtype)
        ab = torch.where((t >= 1) & (t <= self.T), ab, math.nan).unsqueeze(1)  # (B, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def training_step(self, batch) -> Tensor:
        """batch: x0 (B, dim) (a tensor or array-like) or [x0, ...] (labels ignored), cast like
        ``eps_model``'s x (float64 data into a float32 model in float32, ints promoted). Returns
        the ε-prediction loss E‖ε − ε_θ(x_t, t)‖² (mean over entries), with t ~ U{1..T} and
        ε ~ N(0, I) from torch's global RNG."""
        x0 = self._input("batch", batch_data(batch))
        t = torch.randint(1, self.T + 1, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        ab = self.alpha_bars[t - 1].to(x0.dtype).unsqueeze(1)  # t is in [1, T]: no range guard
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return (self._eps_fn()(x_t, t) - noise).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on every parameter with ``lr``."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    # ---- samplers ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        method: str = "ancestral",
        generator: torch.Generator | None = None,
        return_trajectory: bool = False,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
        n_steps: int | None = None,
        eta: float | None = None,
    ) -> Tensor:
        """n samples (n, dim) by the ancestral chain, DDIM or the probability-flow ODE.

        n: an int >= 1. method: "ancestral" (the DDPM reverse chain, T network calls), "ddim"
        (Song et al. 2021: ``n_steps`` network calls on a sub-sequence of the training steps) or
        "ode" (the deterministic probability-flow ODE from the same x_T, adaptive dopri5).
        generator: the source of x_T and of the chains' noise (None: torch's global RNG), on the
        model's device. x_T is its first draw; the ancestral chain and DDIM with eta > 0 (and
        n_steps >= 2) then draw their noise as one (steps, n, dim) tensor, slice i − 1 used at
        the i-th step from x_0 (DDIM's τ_i; the ancestral chain's step i).
        return_trajectory (ancestral and ddim): also return x_T, ..., x_0 as (T + 1, n, dim),
        with DDIM (n_steps + 1, n, dim).
        rtol, atol, max_num_steps: the ODE solver's tolerances (dopri5) and step budget (see
        ``ebm.inference.ode``: past it ``StepBudgetExceeded`` is raised instead of hanging).
        n_steps (ddim only): the number of network calls S, an int in [1, T] (None: min(T, 50)).
            The steps visited are τ_i = ⌊i·T/S⌋, i = S, ..., 1: evenly spaced, always T first,
            every step when S = T; the last update goes from τ_1 to x_0 (ᾱ_0 = 1).
        eta (ddim only): the noise scale η >= 0 (None: 0, deterministic). Each update is
            x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε_θ + σ z with x̂_0 = (x_t − √(1−ᾱ_t) ε_θ)/√ᾱ_t
            and σ² = η² (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev); η = 1 with S = T is the
            ancestral chain (σ² = β̃_t), draw for draw. η > 1 is accepted while every
            1 − ᾱ_prev − σ² stays >= 0 on the chosen steps (else a ValueError gives the bound).

        >>> model = Diffusion(2, hidden=(8,), T=10, schedule="cosine")
        >>> g = torch.Generator().manual_seed(0)
        >>> x, path = model.sample(4, method="ddim", n_steps=5, return_trajectory=True, generator=g)
        >>> x.shape, path.shape  # x_T, x_8, x_6, x_4, x_2, x_0
        (torch.Size([4, 2]), torch.Size([6, 4, 2]))
        """
        check_choice("method", method, ("ancestral", "ddim", "ode"))
        check_int("n", n, minimum=1)
        check_choice("return_trajectory", return_trajectory, (False, True))
        check_ode_args("dopri5", rtol, atol, None, max_num_steps)
        check_generator("generator", generator)
        if n_steps is not None:
            n_steps = check_int("n_steps", n_steps, minimum=1, maximum=self.T)
        if eta is not None:
            check_real("eta", eta, 0)
        if method != "ddim":
            for name, value in (("n_steps", n_steps), ("eta", eta)):
                if value is not None:
                    raise ValueError(
                        f"{name} is only available with method='ddim', got method={method!r}"
                    )
        if return_trajectory and method == "ode":
            raise ValueError(
                "return_trajectory is only available with method='ancestral' or 'ddim'"
            )
        if method == "ddim":
            n_steps = min(self.T, 50) if n_steps is None else n_steps
            coefficients = self._ddim_coefficients(n_steps, 0.0 if eta is None else float(eta))
        device, dtype = self.betas.device, self.freqs.dtype
        x = torch.randn(n, self.dim, generator=generator, device=device, dtype=dtype)
        if method == "ode":
            return self._ode(x, rtol, atol, max_num_steps)
        if method == "ddim":
            return self._ddim(x, generator, return_trajectory, *coefficients)
        return self._ancestral(x, generator, return_trajectory)

    def _ancestral(self, x: Tensor, generator, return_trajectory: bool):
        """x_{t−1} = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t + σ_t z with σ_t² = β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t)."""
        noise = torch.randn((self.T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        path = [x] if return_trajectory else None
        # the chain's coefficients, once per call as Python numbers (no tensor ops per step)
        beta, ab = self.betas.double(), self.alpha_bars.double()
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        c_eps = (beta / (1 - ab).sqrt()).tolist()
        c_x = (1 / (1 - beta).sqrt()).tolist()
        sigma = (beta * (1 - ab_prev) / (1 - ab)).sqrt().tolist()
        eps_fn = self._eps_at_step()
        for t in range(self.T, 0, -1):
            eps = eps_fn(x, float(t))
            x = torch.add(x, eps, alpha=-c_eps[t - 1]).mul_(c_x[t - 1])  # a new tensor per step
            if t > 1:
                x.add_(noise[t - 1], alpha=sigma[t - 1])
            if path is not None:
                path.append(x)
        return (x, torch.stack(path)) if return_trajectory else x

    def _ddim_coefficients(self, n_steps: int, eta: float):
        """DDIM's steps τ_S > ... > τ_1 and, per step, x_prev = a (x + c ε_θ) + σ z as Python
        numbers (a = √(ᾱ_prev/ᾱ_t), a·c = √(1 − ᾱ_prev − σ²) − √(ᾱ_prev (1 − ᾱ_t)/ᾱ_t)), from
        float64 ᾱ. Checks that eta keeps 1 − ᾱ_prev − σ² >= 0 (a bound only when eta > 1)."""
        T = self.T
        # τ_i = ⌊i·T/S⌋: strictly increasing (T/S >= 1), τ_S = T
        steps = [(i * T) // n_steps for i in range(1, n_steps + 1)]
        ab = torch.cat([self.alpha_bars.new_ones(1), self.alpha_bars]).double().cpu()  # ab[0] = 1
        ab_t, ab_prev = ab[steps], ab[[0, *steps[:-1]]]
        ratio = (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)  # σ²/η², 0 on the last step
        # η·η, not η**2 (an OverflowError past 1e154): inf, refused below, except where the ratio
        # is 0 (σ = 0 for every eta: not inf·0 = NaN)
        var = torch.where(ratio > 0, (eta * eta) * ratio, torch.zeros_like(ratio))
        direction = 1 - ab_prev - var  # >= 0 in exact arithmetic when eta <= 1
        if eta > 1 and bool((direction < 0).any()):
            inner = ab_prev < 1  # the last update (to ᾱ_0 = 1) has σ = 0 for every eta
            bound = ((1 - ab_t[inner]) / (1 - ab_t[inner] / ab_prev[inner])).min().sqrt()
            raise ValueError(
                f"eta must be <= {float(bound):.10g} with n_steps = {n_steps} on this schedule "
                f"(a larger eta makes σ² exceed 1 − ᾱ_prev), got {eta!r}"
            )
        direction = direction.clamp(min=0)  # rounding only
        a = (ab_prev / ab_t).sqrt()
        c = (direction.sqrt() - (ab_prev * (1 - ab_t) / ab_t).sqrt()) / a
        return steps, a.tolist(), c.tolist(), var.sqrt().tolist()

    def _ddim(self, x: Tensor, generator, return_trajectory: bool, steps, a, c, sigma):
        """The DDIM updates from x_T over ``steps`` (from ``_ddim_coefficients``), last to first."""
        noisy = any(s > 0 for s in sigma)
        noise = None
        if noisy:
            shape = (len(steps), *x.shape)
            noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
        path = [x] if return_trajectory else None
        eps_fn = self._eps_at_step()
        for i in range(len(steps) - 1, -1, -1):
            eps = eps_fn(x, float(steps[i]))
            x = torch.add(x, eps, alpha=c[i]).mul_(a[i])  # a new tensor per step
            if noisy and sigma[i] > 0:
                x.add_(noise[i], alpha=sigma[i])
            if path is not None:
                path.append(x)
        return (x, torch.stack(path)) if return_trajectory else x

    def _step_of(self, log_sigma: Tensor) -> Tensor:
        """The fractional step t ∈ [1, T] whose log σ_t is ``log_sigma`` (linear interpolation)."""
        table = self.log_sigmas
        i = torch.searchsorted(table, log_sigma.reshape(1)).clamp(1, len(table) - 1)
        lo, hi = table[i - 1], table[i]
        return (i + (log_sigma - lo) / (hi - lo)).clamp(1, self.T)  # table index i−1 is step i

    # ---- the probability-flow ODE: sampling and the likelihood ---------------------------------
    #
    # In DDIM's variables y = x/√ᾱ, σ = √((1 − ᾱ)/ᾱ) (so ᾱ = 1/(1 + σ²), x = y/√(1 + σ²)) the
    # probability-flow ODE reads dy/dσ = ε(x, t(σ)), i.e. the VE form dy/dσ = −σ ∇_y log p_σ(y)
    # with ε = −σ ∇_y log p_σ. Two pieces, σ from the data (σ = 0) to σ_T:
    #   B, σ ∈ [σ_1, σ_T], in s = log σ:  dy/ds = σ ε(y/√(1+σ²), t(s)), t(s) the fractional step
    #      whose log σ is s (``_step_of``).
    #   A, σ ∈ [0, σ_1], below the first step: the score is held at its step-1 value,
    #      dy/dσ = (σ/σ_1) ε(y/√(1+σ_1²), 1), autonomous in τ = σ²/(2σ_1) ∈ [0, σ_1/2]:
    #      dy/dτ = ε(y/√(1+σ_1²), 1). (DDIM's last update, y_0 = y_1 − σ_1 ε(x_1, 1), is one Euler
    #      step of A; for Gaussian data it moves y twice as far as the exact flow, A's error there
    #      is O(σ_1⁴/s⁴).)
    # Along the flow d log p_y/dσ = −tr(∂(dy/dσ)/∂y), with tr(∂ε(ky)/∂y) = k tr(∂ε/∂x). The
    # density of x = y/√(1+σ²) is p_x(x) = p_y(y) (1 + σ²)^{D/2}: at σ = 0 the two agree, at σ_T
    #   log p_y(y_T) = log N(x_T; 0, I) − (D/2) log(1 + σ_T²) = log N(x_T; 0, I) + (D/2) log ᾱ_T.
    # Hence  log p(x) = log N(x_T; 0, I) + (D/2) log ᾱ_T + Δ_A + Δ_B, with
    #   Δ_A = ∫_0^{σ_1/2} k_1 tr(∂ε/∂x)(k_1 y, 1) dτ,  Δ_B = ∫_{log σ_1}^{log σ_T} σ k tr(∂ε/∂x) ds,
    # k = 1/√(1 + σ²) = √ᾱ. Gaussian data N(m, s²I) with the exact ε: dy/dσ = σ(y − m)/(s² + σ²),
    # Δ = (D/2) log((s² + σ_T²)/s²) and log p(x) → log N(x; m, s²I) as ᾱ_T → 0.

    def _sigma_1_and_T(self) -> tuple[Tensor, Tensor]:
        """σ_1 and σ_T (0-d, the buffers' dtype): the first and last steps' noise levels."""
        return self.log_sigmas[0].exp(), self.log_sigmas[-1].exp()

    def _ode(self, x_T: Tensor, rtol: float, atol: float, max_num_steps: int) -> Tensor:
        """x_T (n, dim) -> x_0: piece B from σ_T down to σ_1, then piece A down to σ = 0."""
        log_s = self.log_sigmas
        eps_fn = self._eps_at_step()
        sigma_1, sigma_T = self._sigma_1_and_T()
        k_1 = (1 + sigma_1**2).rsqrt()

        def field_b(s: Tensor, y: Tensor) -> Tensor:
            sigma = s.exp()
            return sigma * eps_fn(y * (1 + sigma**2).rsqrt(), self._step_of(s).reshape(()))

        def field_a(tau: Tensor, y: Tensor) -> Tensor:
            return eps_fn(k_1 * y, 1.0)

        y_T = x_T * (1 + sigma_T**2).sqrt()  # y = x/√ᾱ and 1/ᾱ = 1 + σ²
        span = torch.stack([log_s[-1], log_s[0]]).to(x_T.dtype)
        y_1 = odeint(field_b, y_T, span, "dopri5", rtol, atol, None, max_num_steps)[-1]
        span = torch.stack([sigma_1 / 2, torch.zeros_like(sigma_1)]).to(x_T.dtype)
        return odeint(field_a, y_1, span, "dopri5", rtol, atol, None, max_num_steps)[-1]

    def _eps_and_divergence(self, probe: Tensor | None):
        """(x (B, dim), t a 0-d step) -> (ε_θ(x, t) (B, dim), tr(∂ε_θ/∂x) (B,)), or with a probe
        v (B, dim) Hutchinson's vᵀ(∂ε_θ/∂x)v. The default network (``ebm.energies.mlp``'s chain,
        ``eps_model`` not overridden) in forward mode (``_chain_divergence``), any other by
        autograd (``autograd_divergence``), both from ``ebm.models._divergence``."""
        eps_fn = self._eps_fn()
        chain = _mlp_chain(self.net) if eps_fn == self._eps else None
        if chain is not None:

            def forward_mode(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
                angles = t.to(x.dtype) * self.freqs.to(x.dtype)
                features = torch.cat([angles.sin(), angles.cos()]).expand(len(x), -1)
                return _chain_divergence(*chain, torch.cat([x, features], 1), self.dim, probe)

            return forward_mode
        eps_at_step = self._eps_at_step()

        def by_autograd(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            return autograd_divergence(lambda x_: eps_at_step(x_, t), x, probe, False, "eps_model")

        return by_autograd

    def _flow_to_noise(
        self, x: Tensor, probe: Tensor | None, rtol: float, atol: float, max_num_steps: int
    ) -> tuple[Tensor, Tensor]:
        """x (B, dim) at σ = 0 -> (x_T (B, dim), Δ_A + Δ_B (B,)): pieces A then B, forwards."""
        eps_div = self._eps_and_divergence(probe)
        sigma_1, sigma_T = self._sigma_1_and_T()
        k_1 = (1 + sigma_1**2).rsqrt()
        one = torch.ones((), dtype=x.dtype, device=x.device)

        def field_a(tau: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            eps, div = eps_div(k_1 * state[0], one)
            return eps, k_1 * div

        def field_b(s: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            sigma = s.exp()
            k = (1 + sigma**2).rsqrt()
            eps, div = eps_div(k * state[0], self._step_of(s).reshape(()))
            return sigma * eps, (sigma * k) * div

        delta = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        span = torch.stack([torch.zeros_like(sigma_1), sigma_1 / 2]).to(x.dtype)
        options = {"norm": overflow_safe_norm}  # a far-out x: finite fields whose squares overflow
        out = odeint(field_a, (x, delta), span, "dopri5", rtol, atol, options, max_num_steps)
        span = self.log_sigmas[[0, -1]].to(x.dtype)
        state = (out[0][-1], out[1][-1])
        y_T, delta = (
            s[-1]
            for s in odeint(field_b, state, span, "dopri5", rtol, atol, options, max_num_steps)
        )
        return y_T * (1 + sigma_T**2).rsqrt(), delta

    @torch.no_grad()
    def log_prob(
        self,
        x: Tensor,
        divergence: str = "auto",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """log p(x) (n,) in nats: the density of the probability-flow ODE's samples.

        The model's x_0 = Φ(x_T), x_T ~ N(0, I), with Φ the probability-flow ODE (Song et al.
        2021, appendix D.2) that ``sample(method="ode")`` integrates. By the instantaneous change
        of variables, integrating x from σ = 0 (the data) to σ_T together with the divergence of
        the ODE's drift,
            log p(x) = log N(x_T; 0, I) + (D/2) log ᾱ_T + ∫ tr(∂ drift/∂y),
        computed in DDIM's variables y = x/√ᾱ (the (D/2) log ᾱ_T is the Jacobian from y_T back to
        x_T; at the data end y = x). Below step 1 (σ < σ_1) the score is held at its step-1
        value (see the comment above ``_ode``), which ``sample(method="ode")`` follows too, so
        the two are inverse maps up to the solver's tolerances.
        The prior is the standard normal, as in sampling: with a perfect ε_θ the result differs
        from the data's log-density by log N(x_T; 0, I) − log q_T(x_T), q_T the true marginal
        of x_T. The model checks ᾱ_T ≤ ``max_alpha_bar_T``; for data of mean μ that residual is
        about −√ᾱ_T μ·x_T per point (6e−3·‖μ‖‖x_T‖ nats with the default schedule, ᾱ_T ≈ 4e−5),
        O(ᾱ_T (‖x_T‖² + D)) for centred data, and averages to the KL, ≈ ᾱ_T ‖μ‖²/2.
        Energies: −log p(x) is the energy (low = likely).

        x: (n, dim) finite data (a tensor or an array-like; integers and bools are promoted),
        cast to the parameters' dtype. A point so far out that its log-density is below the
        dtype's range gets −inf (float32: ‖x‖ ≳ 1e19 with a typical network); one so far out
        that ε_θ itself overflows along the ODE (|x| near the dtype's maximum) raises a
        ValueError naming x.
        divergence: "exact" (tr ∂ε_θ/∂x: with the default network one forward-mode pass of
        dim·n rows per evaluation, else dim backward passes), "hutchinson" (an unbiased estimate
        vᵀ(∂ε_θ/∂x)v with one probe v ~ N(0, I) per row for the whole solve, FFJORD) or "auto"
        (exact when dim <= 8). A subclass's ``eps_model`` is differentiated by autograd: an
        output constant in x (e.g. ``torch.zeros_like(x)``) has divergence 0, one that varies
        with x with no gradient path to it (detached, computed in numpy) raises a ValueError
        naming ``eps_model``.
        rtol, atol, max_num_steps: the dopri5 solver's tolerances and step budget, for each of
        the two solves (``StepBudgetExceeded`` past it).
        generator: the source of Hutchinson's probes (None: torch's global RNG), on the model's
        device; unused with the exact divergence. No gradients are computed (an evaluation).

        >>> model = Diffusion(2, hidden=(8,), T=10, schedule="cosine")
        >>> model.log_prob(torch.zeros(3, 2), rtol=1e-3, atol=1e-3).shape
        torch.Size([3])
        """
        check_choice("divergence", divergence, ("auto", "exact", "hutchinson"))
        check_ode_args("dopri5", rtol, atol, None, max_num_steps)
        p = self.betas
        generator = check_generator("generator", generator, p.device)
        dtype = next(self.net.parameters()).dtype
        x = as_float_tensor("x", x, ndim=2, finite=True, dtype=dtype, device=p.device)
        if x.shape[1] != self.dim or x.shape[0] < 1:
            raise ValueError(f"x must have shape (n, {self.dim}) with n >= 1, got {tuple(x.shape)}")
        if divergence == "auto":
            divergence = "exact" if self.dim <= 8 else "hutchinson"
        probe = None
        if divergence == "hutchinson":
            probe = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        try:
            x_T, delta = self._flow_to_noise(x, probe, rtol, atol, max_num_steps)
        except NonFiniteODEError as err:
            raise ValueError(
                f"x is too far out for log_prob in {x.dtype} (largest |x| "
                f"{float(x.abs().max()):.3g}): the probability-flow ODE from x broke down "
                "(eps_model turned NaN or inf on the way, or the step size underflowed); rescale "
                "the data, or evaluate in float64 (model.double())"
            ) from err
        log_alpha_bar_T = -torch.log1p(self._sigma_1_and_T()[1].to(x.dtype) ** 2)
        log_prior = -0.5 * x_T.pow(2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_prior + 0.5 * self.dim * log_alpha_bar_T + delta
