"""Monte Carlo dropout (Gal & Ghahramani 2016): keep dropout on at test time and read the spread
of T stochastic forward passes as the model's (epistemic) uncertainty.

Design: the whole net goes to eval mode (BatchNorm uses its running statistics, and so on) and
every ``nn.Dropout``/``nn.Dropout1d/2d/3d`` module with p > 0 gets a forward hook that draws its
mask from a private generator. The T passes run as one batch: the input is repeated T times
(``(t b) ...``), pushed through once per chunk of at most ``chunk_size`` rows, and rearranged to
(T, B, ...). Masks come from 16 random bits per element (four per 64-bit draw), which makes them
about three times cheaper than ``torch.rand``; the keep probability is rounded to a multiple of
2⁻¹⁶ and the survivors are scaled by the rounded value, so the masked output stays unbiased.
``nn.AlphaDropout``/``nn.FeatureAlphaDropout`` are sampled by their own forward in train mode
(global RNG). Functional dropout (``F.dropout`` called inside ``forward``) is invisible to this
wrapper and is NOT sampled.
"""

from __future__ import annotations

import functools

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    check_choice,
    check_int,
    check_positive,
    check_real,
    make_generator,
)
from ebm.bayes.prediction import Prediction

__all__ = ["MCDropout", "tau_from", "dropout_modules"]

_MASKED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_CHANNELWISE = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_NATIVE = (nn.AlphaDropout, nn.FeatureAlphaDropout)
_BITS = 16
_LEVELS = 1 << _BITS  # 65536 values of a 16-bit uniform
_MAX_ROUNDING = 1e-3  # use 16-bit masks only when they move p by less than 0.1 % of p


def tau_from(
    length_scale: float,
    keep_prob: float,
    n_data: int,
    weight_decay: float,
    loss: str = "mse",
) -> float:
    """Model precision τ = l²p / (2Nλ) of MC dropout (Gal & Ghahramani 2016, eq. 21.2 notes).

    length_scale: prior length-scale l of the weights (short = high-frequency functions).
    keep_prob: p, the probability of KEEPING a unit (1 − the ``p`` of ``nn.Dropout``).
    n_data: N, the number of training points.
    weight_decay: the ``weight_decay`` given to the PyTorch optimiser.
    loss: how the data term of the training loss was written, both reduced by the MEAN over N:
        "mse": ``nn.MSELoss`` (mean of (y − ŷ)²);
        "nll": a mean negative log-likelihood such as ½(y − ŷ)² or cross-entropy.

    Weight-decay convention. Gal's objective is (1/N) Σ E(yᵢ, ŷᵢ) + λ Σ‖W‖², with E the negative
    log-likelihood (½‖y − ŷ‖² for regression). PyTorch's ``weight_decay=wd`` adds wd·w to the
    gradient, i.e. a penalty (wd/2)‖w‖². With a mean-reduced NLL this gives λ = wd/2; with
    ``nn.MSELoss``, which is twice Gal's E, dividing the whole objective by 2 gives λ = wd/4. A
    sum-reduced loss multiplies the data term by N: divide ``weight_decay`` by N before calling.
    Returns τ; its inverse τ⁻¹ is the observation-noise variance added to the sample variance.
    """
    check_positive("length_scale", length_scale)
    check_real("keep_prob", keep_prob, 0.0, 1.0, low_inclusive=False)  # the KEEP probability
    n_data = check_int("n_data", n_data, minimum=1)
    check_positive("weight_decay", weight_decay)
    check_choice("loss", loss, ("mse", "nll"))
    lam = weight_decay / 4.0 if loss == "mse" else weight_decay / 2.0
    return length_scale**2 * keep_prob / (2.0 * n_data * lam)


def dropout_modules(net: nn.Module) -> list[nn.Module]:
    """Every dropout module of ``net`` (an ``nn.Module``) with p > 0 (the ones MC dropout
    samples)."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    return [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0.0]


class MCDropout:
    """Predictive distribution of a dropout net by T stochastic forward passes.

    net: a module containing ``nn.Dropout``-family modules with p > 0; its output for an input
        (B, ...) must be a Tensor (B, ...).
    n_samples: T, the number of passes.
    tau: model precision τ (see ``tau_from``); τ⁻¹ is added to the variance. None adds nothing.
    chunk_size: at most this many rows (samples × points) per forward pass. It bounds memory, and
        small chunks keep a narrow net's activations in cache (4096 was fastest for the notes'
        20-unit net on CPU; a wide net on a GPU may prefer more).
    seed: seeds the private mask generator (None: fresh entropy). The global RNG is untouched:
        by default successive ``predict``/``sample`` calls continue that private stream; pass a
        ``generator`` to a call to draw its masks from that instead.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1))
    >>> mc = MCDropout(net, n_samples=10, seed=0)
    >>> prediction = mc.predict(torch.zeros(4, 1))
    >>> prediction.samples.shape, prediction.mean.shape
    (torch.Size([10, 4, 1]), torch.Size([4, 1]))
    """

    def __init__(
        self,
        net: nn.Module,
        n_samples: int = 100,
        tau: float | None = None,
        chunk_size: int = 4096,
        seed: int | None = None,
    ) -> None:
        if not isinstance(net, nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        n_samples = check_int("n_samples", n_samples, minimum=1)
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        if tau is not None:
            check_positive("tau", tau)
        if seed is not None:
            check_int("seed", seed, minimum=0)
        if not dropout_modules(net):
            raise ValueError(
                "net must contain a dropout module (nn.Dropout, Dropout1d/2d/3d, AlphaDropout) "
                "with p > 0; found none (functional F.dropout is not visible to MCDropout)"
            )
        self.net = net
        self.n_samples = n_samples
        self.tau = tau
        self.chunk_size = chunk_size
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}
        self._buffers: dict[torch.device, Tensor] = {}

    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> Prediction:
        """x: (B, ...) inputs -> Prediction with samples (T, B, ...), mean and var (B, ...).

        var = the population variance of the T samples, plus τ⁻¹ when ``tau`` is set.
        x and generator as in ``sample``.
        """
        samples = self.sample(x, generator)
        noise_var = 0.0 if self.tau is None else 1.0 / self.tau
        return Prediction.from_samples(samples, noise_var=noise_var)

    @torch.no_grad()
    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x: (B, ...) -> (T, B, ...) outputs of T passes with fresh dropout masks.

        x: a tensor or an array-like, finite, B >= 1. It is cast to the dtype and device of the
        net's parameters (float64 data into a float32 net is computed in float32; integer and
        bool data are promoted), so the net's output dtype decides the samples' dtype.
        generator: the source of the dropout masks, on the net's device (None: this object's
        private generator, seeded by ``seed``). ``nn.AlphaDropout``-family modules draw from
        torch's global RNG either way.
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
        x = as_float_tensor("x", x)
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"x must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
        param = next((p for p in self.net.parameters() if p.is_floating_point()), None)
        if param is not None:
            x = x.to(device=param.device, dtype=param.dtype)
        n_points, n_samples = x.shape[0], self.n_samples
        rows = min(n_points, self.chunk_size)  # points per chunk
        per_chunk = max(1, self.chunk_size // rows)  # samples per chunk
        modules = dropout_modules(self.net)
        states = [(m, m.training) for m in self.net.modules()]
        handles = []
        try:
            self.net.eval()
            for m in modules:
                if isinstance(m, _MASKED):
                    channelwise = isinstance(m, _CHANNELWISE)
                    hook = functools.partial(self._dropout_hook, channelwise, generator)
                    handles.append(m.register_forward_hook(hook))
                else:  # AlphaDropout family: its own forward, in train mode
                    m.train()
            out = None
            for b0 in range(0, n_points, rows):
                xb = x[b0 : b0 + rows]
                xr = repeat(xb, "b ... -> (t b) ...", t=min(per_chunk, n_samples))
                for t0 in range(0, n_samples, per_chunk):
                    tc = min(per_chunk, n_samples - t0)
                    y = self.net(xr[: tc * len(xb)])
                    if not isinstance(y, Tensor) or y.shape[:1] != (tc * len(xb),):
                        raise ValueError(
                            "net must return a Tensor with one row per input row, got "
                            f"{type(y).__name__} {tuple(getattr(y, 'shape', ()))}"
                        )
                    y = rearrange(y, "(t b) ... -> t b ...", t=tc)
                    if out is None:
                        out = y.new_empty((n_samples, n_points, *y.shape[2:]))
                    out[t0 : t0 + tc, b0 : b0 + len(xb)] = y
        finally:
            for h in handles:
                h.remove()
            for m, training in states:
                m.training = training
        return out

    # masks ---------------------------------------------------------------------------------

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = make_generator(self.seed, device)
        return self._generators[device]

    def _uniform16(
        self, shape: torch.Size, device: torch.device, generator: torch.Generator
    ) -> Tensor:
        """int16 uniforms over [−2¹⁵, 2¹⁵) of ``shape``: four per 64-bit draw, one reused buffer."""
        numel = shape.numel()
        words = -(-numel // 4)
        buffer = self._buffers.get(device)
        if buffer is None or buffer.numel() < words:
            buffer = torch.empty(words, dtype=torch.int64, device=device)
            self._buffers[device] = buffer
        bits = buffer[:words].random_(-(2**63), 2**63 - 1, generator=generator)
        return bits.view(torch.int16)[:numel].view(shape)

    def _dropout_hook(
        self,
        channelwise: bool,
        generator: torch.Generator | None,
        module: nn.Module,
        inputs: tuple,
        output: Tensor,
    ):
        (x,) = inputs
        if generator is None:
            generator = self._generator(x.device)
        p = float(module.p)
        if p >= 1.0:
            return torch.zeros_like(x)
        shape = x.shape[:2] + (1,) * (x.ndim - 2) if channelwise and x.ndim > 2 else x.shape
        kept_levels = round((1.0 - p) * _LEVELS)
        p_rounded = 1.0 - kept_levels / _LEVELS
        # the comparisons write 0/1 straight into a float mask: several times cheaper on CPU
        # than a bool mask with masked_fill_ or where
        mask = torch.empty(shape, dtype=x.dtype, device=x.device)
        if 0 < kept_levels < _LEVELS and abs(p_rounded - p) <= _MAX_ROUNDING * p:
            uniform = self._uniform16(shape, x.device, generator)
            torch.lt(uniform, kept_levels - _LEVELS // 2, out=mask)
            scale = _LEVELS / kept_levels
        else:  # p too small or too close to 1 for 16 bits
            u = torch.rand(shape, device=x.device, generator=generator)
            torch.ge(u, p, out=mask)
            scale = 1.0 / (1.0 - p)
        return (x * mask).mul_(scale)
