"""Last-layer Laplace approximation (MacKay 1992; Daxberger et al. 2021, "Laplace Redux").

A trained net is kept as it is; only its last ``nn.Linear`` layer, with parameters θ (W (K, D)
and b (K,)), gets a Gaussian posterior N(θ*, Σ) centred at the trained weights θ*, with
precision Σ⁻¹ = s·H + δI: H is the generalised Gauss-Newton matrix (GGN) of the training loss
in θ, which for a last layer is exact (the output is linear in θ), δ the prior precision, s = 1
for classification and 1/σ² for regression. Everything below the last layer is a fixed feature
map φ(x) (D,), read with a forward hook during the user's own forward pass.

Per training point, with J = ∂f/∂θ = [I_K ⊗ φᵀ, I_K] (K, P), P = K·D (+ K with a bias):
softmax cross-entropy gives Jᵀ(diag(p) − ppᵀ)J, a Gaussian likelihood Jᵀ J (times 1/σ²).
``hessian="full"`` keeps the whole (P, P) sum; ``"kron"`` is KFAC (Martens & Grosse 2015;
Ritter et al. 2018) as laplace-torch computes it: the weight block is B ⊗ A with
B = Σₙ Λₙ (K, K) and A = (1/N) Σₙ φₙφₙᵀ (D, D), the bias its own block B, no weight-bias
coupling; the prior is added exactly through the factors' eigendecompositions.
The predictive is the linearised one: f(x) ~ N(f*(x), J Σ Jᵀ).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ebm._checks import (
    as_float_tensor,
    as_index_tensor,
    check_choice,
    check_generator,
    check_int,
    check_positive,
)
from ebm.bayes.prediction import Prediction

__all__ = ["LastLayerLaplace"]

_LIKELIHOODS = ("classification", "regression")
_HESSIANS = ("full", "kron")
_LINKS = ("probit", "mc")
_METHODS = ("marglik",)
_LOG_DELTA_RANGE = (-12.0 * math.log(10.0), 12.0 * math.log(10.0))  # δ in [1e-12, 1e12]


def _find_last_linear(model: nn.Module) -> nn.Linear:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(
            "model must contain an nn.Linear layer (the last one is the Laplace layer), found none"
        )
    return layers[-1]


class LastLayerLaplace:
    """Gaussian posterior over the last linear layer of a trained net, and its predictive.

    model: the trained ``nn.Module``, x (B, ...) -> f (B, K): logits for classification,
        predictions for regression. It is used as it is (not copied): its weights must not
        change between ``fit`` and ``predict`` (a change of the last layer is detected and
        refused; a change below it is not). During ``fit`` and ``predict`` it runs in eval mode
        (dropout off, BatchNorm on its running statistics); every module's mode is restored.
    likelihood: "classification" (softmax cross-entropy, y (N,) class indices, K >= 2) or
        "regression" (Gaussian with std ``sigma_noise``, y (N, K), or (N,) when K = 1).
    hessian: "full" (the exact GGN of the last layer, (P, P)) or "kron" (KFAC, laplace-torch's
        convention; see the module docstring).
    prior_precision: δ, the precision of the zero-mean isotropic Gaussian prior on the last
        layer's parameters, a finite real > 0; ``optimize_prior_precision`` replaces it.
    sigma_noise: σ, the observation-noise std for regression, a finite real > 0; must be 1 for
        classification (it has no noise parameter).
    last_layer: the ``nn.Linear`` submodule of ``model`` to treat (None: the last ``nn.Linear``
        in ``model.modules()``, i.e. in the order the submodules were registered). Its output
        must BE the model's output (nothing applied after it) and it must run once per forward
        pass, on features (B, D): both are checked at every forward.

    Parameters are ordered as ``torch.nn.utils.parameters_to_vector(last_layer.parameters())``:
    W row-major (K·D), then b (K). After ``fit``: ``mean_`` (P,) θ*, ``n_data_`` N,
    ``n_outputs_`` K, ``n_features_`` D. Data: tensors or array-likes, finite; x is cast to the
    model's parameter dtype and device (float64 data into a float32 model is computed in float32;
    integers and bools promoted). Results are on the model's device, in its dtype.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> x, y = torch.randn(50, 2), torch.randint(0, 3, (50,))
    >>> la = LastLayerLaplace(net, "classification", hessian="kron").fit(x, y)
    >>> la = la.optimize_prior_precision()
    >>> pred = la.predict(x[:4])  # probit: mean = class probabilities (4, 3)
    >>> pred.mean.shape, bool(torch.allclose(pred.mean.sum(1), torch.ones(4)))
    (torch.Size([4, 3]), True)
    """

    def __init__(
        self,
        model: nn.Module,
        likelihood: str = "classification",
        hessian: str = "full",
        prior_precision: float = 1.0,
        sigma_noise: float = 1.0,
        last_layer: nn.Linear | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_choice("likelihood", likelihood, _LIKELIHOODS)
        check_choice("hessian", hessian, _HESSIANS)
        check_positive("prior_precision", prior_precision)
        check_positive("sigma_noise", sigma_noise)
        if likelihood == "classification" and float(sigma_noise) != 1.0:
            raise ValueError(
                f"sigma_noise must be 1 for classification (it is the regression noise std), "
                f"got {sigma_noise!r}"
            )
        if last_layer is None:
            last_layer = _find_last_linear(model)
        elif not isinstance(last_layer, nn.Linear):
            raise ValueError(f"last_layer must be an nn.Linear, got {type(last_layer).__name__}")
        elif not any(m is last_layer for m in model.modules()):
            raise ValueError("last_layer must be a submodule of model, got a layer outside it")
        self.model, self.likelihood, self.hessian = model, likelihood, hessian
        self.prior_precision, self.sigma_noise = prior_precision, sigma_noise
        self.last_layer = last_layer
        self._sigma_cache: tuple[float, Tensor] | None = None

    # ---- the layer and its features ------------------------------------------------------------

    def _params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.last_layer.parameters()])

    def _dtype_device(self) -> tuple[torch.dtype, torch.device]:
        weight = self.last_layer.weight
        return weight.dtype, weight.device

    def _as_input(self, x: object) -> Tensor:
        x = as_float_tensor("x", x)
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"x must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
        dtype, device = self._dtype_device()
        return x.to(device=device, dtype=dtype)

    @torch.no_grad()
    def _features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, ...) -> (φ (B, D) the last layer's input, f (B, K) the model's output)."""
        captured: list[tuple[Tensor, Tensor]] = []

        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            captured.append((inputs[0], output))

        states = [(m, m.training) for m in self.model.modules()]
        handle = self.last_layer.register_forward_hook(hook)
        try:
            self.model.eval()
            out = self.model(x)
        finally:
            handle.remove()
            for m, training in states:
                m.training = training
        if len(captured) != 1:
            raise ValueError(
                f"last_layer must run exactly once per forward pass of model, it ran "
                f"{len(captured)} times: pass the layer to treat as last_layer="
            )
        features, layer_out = captured[0]
        if layer_out is not out:
            raise ValueError(
                "model's output must be last_layer's output, with nothing applied after it "
                "(a squeeze, a softmax, ...): the Laplace posterior is over that layer's outputs; "
                "pass the right layer as last_layer=, or drop the final operation from model"
            )
        if features.ndim != 2:
            raise ValueError(
                f"last_layer must act on features (B, D), got input of shape "
                f"{tuple(features.shape)}"
            )
        return features, out

    def _augment(self, features: Tensor) -> Tensor:
        """φ (B, D) -> (B, D + 1) with a column of ones when the layer has a bias."""
        if self.last_layer.bias is None:
            return features
        return torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1)

    # ---- fit ----------------------------------------------------------------------------------

    def _batches(self, x: object, y: object) -> Iterator[tuple[object, object]]:
        if y is not None:
            yield x, y
            return
        if isinstance(x, (Tensor, np.ndarray)) or not hasattr(x, "__iter__"):
            raise ValueError(
                "y is required when x is a tensor or an array (or pass x as an iterable of "
                f"(x, y) batches, such as a DataLoader), got x of type {type(x).__name__}"
            )
        for i, batch in enumerate(x):
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(
                    f"x must yield (x, y) batches when y is None: batch {i} is "
                    f"{type(batch).__name__}"
                    + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
                )
            yield batch[0], batch[1]

    def _targets(self, y: object, out: Tensor) -> Tensor:
        n, k = out.shape
        if self.likelihood == "classification":
            y = as_index_tensor("y", y, ndim=1, high=k, device=out.device)
        else:
            y = as_float_tensor("y", y).to(device=out.device, dtype=out.dtype)
            if y.ndim == 1 and k == 1:
                y = y[:, None]
            if y.shape != out.shape:
                raise ValueError(
                    f"y must have the shape of model's output {tuple(out.shape)} (or (N,) "
                    f"when K = 1), got {tuple(y.shape)}"
                )
        if y.shape[0] != n:
            raise ValueError(f"y must have one row per row of x ({n}), got {tuple(y.shape)}")
        return y

    def fit(self, x: object, y: object = None) -> LastLayerLaplace:
        """Accumulate the last layer's GGN over the training data; returns self.

        x: (N, ...) inputs and y their targets (see ``likelihood``), tensors or array-likes,
            finite, N >= 1; or, with y None, an iterable of (x, y) batches (a DataLoader, a
            list of pairs), summed over. A fit starts from scratch.
        y: the targets (N,) class indices in [0, K) or regression targets (N, K) / (N,), or
            None when x yields batches.
        """
        if self.likelihood == "classification" and float(self.sigma_noise) != 1.0:
            raise ValueError(f"sigma_noise must be 1 for classification, got {self.sigma_noise!r}")
        dtype, device = self._dtype_device()
        n_data, loss, ggn, fac_b, fac_a = 0, None, None, None, None
        for xb, yb in self._batches(x, y):
            features, out = self._features(self._as_input(xb))
            if out.ndim != 2:
                raise ValueError(f"model must return (B, K) outputs, got {tuple(out.shape)}")
            n, k = out.shape
            if self.likelihood == "classification" and k < 2:
                raise ValueError(
                    f"model must return K >= 2 logits for classification, got {tuple(out.shape)}"
                )
            target = self._targets(yb, out)
            if self.likelihood == "classification":
                log_p = out.log_softmax(-1)
                batch_loss = -log_p.gather(1, target[:, None]).sum()
                p = log_p.exp()
                lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (B, K, K)
            else:
                batch_loss = (target - out).pow(2).sum()  # the sum of squared errors
                lam = torch.eye(k, dtype=dtype, device=device).expand(n, k, k)
            loss = batch_loss if loss is None else loss + batch_loss
            if self.hessian == "full":
                phi = self._augment(features)
                batch = torch.einsum("nkl,ni,nj->kilj", lam, phi, phi)
                ggn = batch if ggn is None else ggn + batch
            else:
                batch_b, batch_a = lam.sum(0), features.T @ features
                fac_b = batch_b if fac_b is None else fac_b + batch_b
                fac_a = batch_a if fac_a is None else fac_a + batch_a
            n_data += n
        if n_data == 0:
            raise ValueError("x must hold at least one (x, y) pair, got no data")
        self.mean_ = self._params()
        self.n_data_, self.n_outputs_ = n_data, k
        self.n_features_ = self.last_layer.in_features
        self._loss = float(loss.double())
        if self.hessian == "full":
            p_aug = ggn.shape[0] * ggn.shape[1]
            self._ggn = ggn.reshape(p_aug, p_aug)
            eigvals, self._eigvecs = torch.linalg.eigh(self._ggn)
            self._eigvals = eigvals.clamp_min(0.0)
        else:
            fac_a = fac_a / n_data
            eig_b, self._vec_b = torch.linalg.eigh(fac_b)
            eig_a, self._vec_a = torch.linalg.eigh(fac_a)
            self._eig_b, self._eig_a = eig_b.clamp_min(0.0), eig_a.clamp_min(0.0)
            self._fac_b, self._fac_a = fac_b, fac_a
        self._sigma_cache = None
        return self

    # ---- the posterior ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise ValueError("this LastLayerLaplace is not fitted yet: call fit(x, y) first")

    def _scale(self) -> float:
        """s: the factor of the GGN in the posterior precision (1/σ² for regression)."""
        return 1.0 if self.likelihood == "classification" else 1.0 / float(self.sigma_noise) ** 2

    def _curvature_eigvals(self) -> Tensor:
        """Every eigenvalue of s·H (P,), the GGN part of the posterior precision."""
        if self.hessian == "full":
            eig = self._eigvals
        else:
            eig = torch.outer(self._eig_b, self._eig_a).reshape(-1)
            if self.last_layer.bias is not None:
                eig = torch.cat([eig, self._eig_b])
        return eig * self._scale()

    def _log_likelihood(self) -> float:
        if self.likelihood == "classification":
            return -self._loss
        sigma = float(self.sigma_noise)
        return -0.5 * self._loss / sigma**2 - self.n_data_ * self.n_outputs_ * math.log(
            sigma * math.sqrt(2.0 * math.pi)
        )

    def _evidence_terms(self) -> tuple[np.ndarray, float, int]:
        eig = self._curvature_eigvals().detach().double().cpu().numpy()
        sq_norm = float(self.mean_.double().pow(2).sum())
        return eig, sq_norm, eig.shape[0]

    def log_marginal_likelihood(self, prior_precision: float | None = None) -> float:
        """The Laplace approximation of log p(D | δ), a Python float.

        log p(D | θ*) − ½ [log det(s·H + δI) − P log δ + δ ‖θ*‖²], with log p(D | θ*) the
        training log-likelihood at the trained weights (for regression with its Gaussian
        normaliser −N·K·log(σ√(2π))). For a linear-Gaussian model at the MAP weights it is the
        exact evidence. θ* stays the trained weights whatever δ is.
        prior_precision: δ to evaluate at, a finite real > 0 (None: ``self.prior_precision``).
        """
        self._check_fitted()
        delta = self.prior_precision if prior_precision is None else prior_precision
        delta = float(check_positive("prior_precision", delta))
        eig, sq_norm, n_params = self._evidence_terms()
        log_det_ratio = np.log(eig + delta).sum() - n_params * math.log(delta)
        return self._log_likelihood() - 0.5 * (float(log_det_ratio) + delta * sq_norm)

    def optimize_prior_precision(self, method: str = "marglik") -> LastLayerLaplace:
        """Set ``prior_precision`` to the δ that maximises ``log_marginal_likelihood``; returns
        self.

        method: "marglik" (the only one). With μᵢ the eigenvalues of s·H, the evidence is
        concave in t = log δ: its derivative −½[Σᵢ δ/(μᵢ + δ) − P + δ‖θ*‖²] decreases in δ,
        so the maximum is the one root, found by bisection in t to machine precision (the
        fixed point of MacKay's update δ = γ/‖θ*‖², γ = Σᵢ μᵢ/(μᵢ + δ)). A maximum outside
        δ ∈ [1e-12, 1e12] (θ* = 0, or no curvature) is a ValueError.
        """
        check_choice("method", method, _METHODS)
        self._check_fitted()
        eig, sq_norm, n_params = self._evidence_terms()

        def slope(t: float) -> float:  # −2 × d evidence / d log δ: increasing in t
            delta = math.exp(t)
            return float((delta / (eig + delta)).sum()) - n_params + delta * sq_norm

        lo, hi = _LOG_DELTA_RANGE
        if slope(lo) > 0 or slope(hi) < 0:
            where = "below 1e-12" if slope(lo) > 0 else "above 1e12"
            raise ValueError(
                f"the marginal likelihood has no maximum over prior_precision in [1e-12, 1e12] "
                f"(it lies {where}: ‖θ*‖² = {sq_norm:.3g}, largest curvature "
                f"{float(eig.max()) if eig.size else 0.0:.3g})"
            )
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if slope(mid) > 0:
                hi = mid
            else:
                lo = mid
            if hi - lo < 1e-14:
                break
        self.prior_precision = math.exp(0.5 * (lo + hi))
        self._sigma_cache = None
        return self

    def _delta(self) -> float:
        return float(check_positive("prior_precision", self.prior_precision))

    def _posterior_cov_aug(self) -> Tensor:
        """Σ (P, P) of the full posterior, in the augmented order (k, i) of (W | b)."""
        delta = self._delta()
        key = (delta, self._scale())
        if self._sigma_cache is None or self._sigma_cache[0] != key:
            vec = self._eigvecs
            inv = 1.0 / (self._eigvals * self._scale() + delta)
            self._sigma_cache = (key, (vec * inv) @ vec.T)
        return self._sigma_cache[1]

    def _param_order(self) -> Tensor:
        """For each parameter index (W row-major, then b), its index in the augmented order."""
        k, d = self.n_outputs_, self.n_features_
        d1 = d + (self.last_layer.bias is not None)
        index = [kk * d1 + i for kk in range(k) for i in range(d)]
        if self.last_layer.bias is not None:
            index += [kk * d1 + d for kk in range(k)]
        return torch.tensor(index, device=self.mean_.device)

    def posterior_precision(self) -> Tensor:
        """(P, P) posterior precision s·H + δI, parameters in ``mean_``'s order."""
        self._check_fitted()
        delta, s = self._delta(), self._scale()
        if self.hessian == "full":
            order = self._param_order()
            prec = self._ggn[order][:, order] * s
        else:
            blocks = [torch.kron(self._fac_b, self._fac_a) * s]
            if self.last_layer.bias is not None:
                blocks.append(self._fac_b * s)
            prec = torch.block_diag(*blocks)
        return prec + delta * torch.eye(prec.shape[0], dtype=prec.dtype, device=prec.device)

    def posterior_covariance(self) -> Tensor:
        """(P, P) posterior covariance Σ = (s·H + δI)⁻¹, parameters in ``mean_``'s order."""
        self._check_fitted()
        if self.hessian == "full":
            order = self._param_order()
            return self._posterior_cov_aug()[order][:, order]
        delta, s = self._delta(), self._scale()
        vec_w = torch.kron(self._vec_b, self._vec_a)
        inv_w = 1.0 / (torch.outer(self._eig_b, self._eig_a).reshape(-1) * s + delta)
        blocks = [(vec_w * inv_w) @ vec_w.T]
        if self.last_layer.bias is not None:
            blocks.append((self._vec_b / (self._eig_b * s + delta)) @ self._vec_b.T)
        return torch.block_diag(*blocks)

    # ---- the predictive -----------------------------------------------------------------------

    def _check_unchanged(self) -> None:
        current = self._params()
        if current.shape != self.mean_.shape or not torch.equal(current, self.mean_):
            raise ValueError(
                "model's last layer changed since fit (the posterior is centred at the old "
                "weights): call fit again"
            )

    def _functional(self, x: object) -> tuple[Tensor, Tensor]:
        """x -> (f* (B, K), J Σ Jᵀ (B, K, K)): the linearised predictive of the outputs."""
        self._check_fitted()
        self._check_unchanged()
        features, out = self._features(self._as_input(x))
        delta, s = self._delta(), self._scale()
        if self.hessian == "full":
            phi = self._augment(features)
            k, d1 = self.n_outputs_, phi.shape[1]
            sigma = self._posterior_cov_aug().reshape(k, d1, k, d1)
            f_cov = torch.einsum("ni,kilj,nj->nkl", phi, sigma, phi)
        else:
            rotated = features @ self._vec_a  # (B, D) in A's eigenbasis
            inv_w = 1.0 / (torch.outer(self._eig_b, self._eig_a) * s + delta)  # (K, D)
            w = rotated.pow(2) @ inv_w.T  # (B, K) in B's eigenbasis
            if self.last_layer.bias is not None:
                w = w + 1.0 / (self._eig_b * s + delta)
            f_cov = torch.einsum("kq,nq,lq->nkl", self._vec_b, w, self._vec_b)
        return out, 0.5 * (f_cov + f_cov.transpose(1, 2))

    def functional_samples(
        self, x: object, n_samples: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        """(T, B, K) draws of the outputs f(x) ~ N(f*(x), J Σ Jᵀ) (logits for classification:
        feed them to ``mean_probs`` or ``mutual_information``; no observation noise).

        x: (B, ...) inputs, finite, cast like ``fit``'s. n_samples: T, an int >= 1.
        generator: the source of the normal draws, on the model's device (None: torch's global
        RNG).
        """
        n_samples = check_int("n_samples", n_samples, minimum=1)
        _, device = self._dtype_device()
        check_generator("generator", generator, device)
        mean, cov = self._functional(x)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        root = eigvecs * eigvals.clamp_min(0.0).sqrt()[:, None, :]  # (B, K, K): root rootᵀ = cov
        z = torch.randn(
            (n_samples, *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device
        )
        return mean + torch.einsum("nkq,tnq->tnk", root, z)

    def predict(
        self,
        x: object,
        link_approx: str = "probit",
        n_samples: int = 100,
        generator: torch.Generator | None = None,
    ) -> Prediction:
        """x: (B, ...) -> Prediction of the targets, mean and var (B, K), samples None.

        Regression: mean f*(x), var = diag(J Σ Jᵀ) + σ² (the closed-form Gaussian predictive;
        ``link_approx``, ``n_samples`` and ``generator`` are not used).
        Classification: mean = the predictive class probabilities p (B, K), var = p(1 − p), the
        variance of the one-hot label under them. ``link_approx="probit"`` (MacKay 1992):
        p = softmax(f* / sqrt(1 + π/8 · diag(J Σ Jᵀ))); ``"mc"``: p = the average softmax of
        ``n_samples`` draws from ``functional_samples`` (drawn from ``generator``).
        x: tensor or array-like, finite, B >= 1; cast to the model's dtype and device.
        link_approx: "probit" or "mc". n_samples: T for "mc", an int >= 1. generator: a
        ``torch.Generator`` on the model's device, or None (torch's global RNG).
        """
        check_choice("link_approx", link_approx, _LINKS)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        _, device = self._dtype_device()
        check_generator("generator", generator, device)
        if self.likelihood == "regression":
            mean, cov = self._functional(x)
            var = cov.diagonal(dim1=1, dim2=2) + float(self.sigma_noise) ** 2
            return Prediction(mean=mean, var=var)
        if link_approx == "probit":
            mean, cov = self._functional(x)
            kappa = (1.0 + math.pi / 8.0 * cov.diagonal(dim1=1, dim2=2)).rsqrt()
            probs = (kappa * mean).softmax(-1)
        else:
            probs = self.functional_samples(x, n_samples, generator).softmax(-1).mean(0)
        return Prediction(mean=probs, var=(probs * (1.0 - probs)).clamp_min(0.0))
