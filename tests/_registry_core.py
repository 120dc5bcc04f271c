"""Bad-input registry, part 1: energies, losses, inference, latent, score matching, sampling.

Each entry: a valid call (small, deterministic) and the spec of every argument; see
``_public_api.Entry``. Forward passes (``Fw``) propagate NaN; the rest (``V``) validate.
"""

from __future__ import annotations

import torch
from _bad_values import (
    NAN,
    RAISE,
    Bad,
    Choice,
    Data,
    Fn,
    Fw,
    Int,
    Interval,
    Labels,
    Module,
    Real,
    Reals,
    Sizes,
    Skip,
    Spec,
    V,
    det,
    gen,
    net,
    rand,
    randn,
)
from hypothesis import strategies as st

import ebm.energies as en
import ebm.inference as inf
import ebm.latent as lat
import ebm.losses as L
import ebm.sampling as smp
import ebm.score_matching as sm

POSITIVE = Real(0, None, low_inclusive=False)
POSITIVE_OR_INF = Real(0, None, low_inclusive=False, inf=True)
NONNEGATIVE = Real(0)
ACTIVATION = Skip("a layer class")
IGNORED_X = Skip("an unconditional energy ignores x")
B = 5


def _cond_mlp() -> en.MLPEnergy:
    return det(en.MLPEnergy(2, hidden=(4,), cond_dim=1))


def _gaussian() -> en.GaussianEnergy:
    return en.GaussianEnergy(torch.zeros(2), torch.tensor([[2.0, 0.5], [0.5, 1.0]]))


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.pow(2).flatten(1).sum(1)


# ---- energies ---------------------------------------------------------------------------------

ENERGIES = {
    "ebm.energies.mlp": V(
        lambda: (en.mlp, dict(sizes=(2, 4, 1))), sizes=Sizes(), activation=ACTIVATION
    ),
    "ebm.energies.MLPEnergy": V(
        lambda: (en.MLPEnergy, dict(dim=2, hidden=(4,), cond_dim=1)),
        dim=Int(1),
        hidden=Sizes(empty_ok=True),
        cond_dim=Int(0),
        activation=ACTIVATION,
    ),
    "ebm.energies.ClassEnergy": V(
        lambda: (en.ClassEnergy, dict(backbone=net(2, 3))), backbone=Module()
    ),
    "ebm.energies.SiameseEnergy": V(
        lambda: (en.SiameseEnergy, dict(embed=net(2, 3))), embed=Module()
    ),
    "ebm.energies.CircleEnergy": V(lambda: (en.CircleEnergy, dict(radius=1.5)), radius=POSITIVE),
    "ebm.energies.GaussianEnergy": V(
        lambda: (
            en.GaussianEnergy,
            dict(mean=randn(2), cov=torch.tensor([[2.0, 0.5], [0.5, 1.0]])),
        ),
        mean=Data(trailing=True),
        cov=Data(trailing=True),
    ),
    "ebm.energies.BananaEnergy": V(
        lambda: (en.BananaEnergy, dict(a=1.5, b=0.5)), a=POSITIVE, b=Real()
    ),
    "ebm.energies.Energy.score": Fw(
        lambda: (_cond_mlp().score, dict(y=randn(B, 2), x=randn(B, 1, seed=1))),
        y=Data(trailing=True, empty=False),
        x=Data(trailing=True, empty=False),
    ),
    "ebm.energies.MLPEnergy.forward": Fw(
        lambda: (_cond_mlp(), dict(y=randn(B, 2), x=randn(B, 1, seed=1))),
        y=Data(trailing=True, empty=False),
        x=Data(trailing=True, empty=False),
    ),
    "ebm.energies.ClassEnergy.energies": Fw(
        lambda: (en.ClassEnergy(net(2, 3)).energies, dict(x=randn(B, 2))),
        x=Data(
            ndim=False, empty=False
        ),  # the backbone's input: its shape is the backbone's business
    ),
    "ebm.energies.ClassEnergy.forward": Fw(
        lambda: (en.ClassEnergy(net(2, 3)), dict(y=torch.tensor([0, 1, 2, 1, 0]), x=randn(B, 2))),
        y=Labels(3),
        x=Data(ndim=False, empty=False),
    ),
    "ebm.energies.ClassEnergy.predict": V(
        lambda: (en.ClassEnergy(net(2, 3)).predict, dict(x=randn(B, 2))), x=Data(ndim=False)
    ),
    "ebm.energies.SiameseEnergy.forward": Fw(
        lambda: (en.SiameseEnergy(net(2, 3)), dict(y=randn(B, 2), x=randn(B, 2, seed=1))),
        y=Data(trailing=True, empty=False),
        x=Data(trailing=True, empty=False),
    ),
    "ebm.energies.CircleEnergy.forward": Fw(
        lambda: (en.CircleEnergy(), dict(y=randn(B, 2))),
        y=Data(trailing=True, empty=False),
        x=IGNORED_X,
    ),
    "ebm.energies.GaussianEnergy.forward": Fw(
        lambda: (_gaussian(), dict(y=randn(B, 2))), y=Data(trailing=True, empty=False), x=IGNORED_X
    ),
    "ebm.energies.BananaEnergy.forward": Fw(
        lambda: (en.BananaEnergy(), dict(y=randn(B, 2))),
        y=Data(trailing=True, empty=False),
        x=IGNORED_X,
    ),
}


# ---- losses -----------------------------------------------------------------------------------

PAIR = Data(ndim=False, empty=False, trailing=True)  # p, n: any shape, the same for both
ANY_SHAPE = Data(ndim=False, empty=False)
# same: labels or weights in [0, 1], like target checked on the CPU (NaN refused there)
SAME = Data(finite=True, ndim=False, empty=False, trailing=True)
CANDIDATES = Data(empty=False)  # E: (B, K)
TARGET = Labels(4)
REDUCTION = Choice()
CHECK_TARGET = Skip("the switch of the CPU target check")


def _pn() -> dict:
    return dict(p=randn(B), n=randn(B, seed=1))


def _et() -> dict:
    return dict(E=randn(B, 4), target=torch.tensor([0, 3, 1, 2, 0]))


def _pair_loss(fn, **hyper):
    return Fw(
        lambda: (fn, dict(**_pn(), reduction="none")),
        p=PAIR,
        n=PAIR,
        reduction=REDUCTION,
        **hyper,
    )


def _candidate_loss(fn, **hyper):
    return Fw(
        lambda: (fn, dict(**_et(), reduction="none")),
        nosync=dict(check_target=False),
        E=CANDIDATES,
        target=TARGET,
        reduction=REDUCTION,
        check_target=CHECK_TARGET,
        **hyper,
    )


LOSSES = {
    "ebm.losses.energy_loss": Fw(
        lambda: (L.energy_loss, dict(p=randn(B), reduction="none")),
        p=ANY_SHAPE,
        reduction=REDUCTION,
    ),
    "ebm.losses.perceptron_loss": _candidate_loss(L.perceptron_loss),
    "ebm.losses.hinge_loss": _pair_loss(L.hinge_loss, margin=POSITIVE),
    "ebm.losses.log_loss": _pair_loss(L.log_loss),
    "ebm.losses.lvq2_loss": _pair_loss(L.lvq2_loss, cap=POSITIVE),
    "ebm.losses.mce_loss": _pair_loss(L.mce_loss),
    "ebm.losses.square_square_loss": _pair_loss(L.square_square_loss, margin=POSITIVE),
    "ebm.losses.square_exp_loss": _pair_loss(L.square_exp_loss, beta=POSITIVE),
    "ebm.losses.nll_loss": _candidate_loss(L.nll_loss, beta=POSITIVE),
    "ebm.losses.mee_loss": _candidate_loss(L.mee_loss, beta=POSITIVE),
    "ebm.losses.contrastive_loss": Fw(
        lambda: (
            L.contrastive_loss,
            dict(d=rand(B), same=torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0]), reduction="none"),
        ),
        nosync=dict(check_same=False),
        d=PAIR,
        same=SAME,
        margin=POSITIVE,
        reduction=REDUCTION,
        check_same=Skip("the switch of the CPU check of same"),
    ),
    "ebm.losses.contrastive_divergence_loss": Fw(
        lambda: (L.contrastive_divergence_loss, dict(e_data=randn(B), e_model=randn(3, seed=1))),
        rows=False,
        e_data=Data(),
        e_model=Data(),
        alpha=NONNEGATIVE,
    ),
    "ebm.losses.most_offending": Fw(
        lambda: (L.most_offending, _et()),
        nosync=dict(check_target=False),
        E=CANDIDATES,
        target=TARGET,
        check_target=CHECK_TARGET,
    ),
    "ebm.losses.correct_and_offending": Fw(
        lambda: (L.correct_and_offending, _et()),
        out=lambda r: r[0] + r[1],
        nosync=dict(check_target=False),
        E=CANDIDATES,
        target=TARGET,
        check_target=CHECK_TARGET,
    ),
    "ebm.losses.nce_loss": Fw(
        lambda: (
            L.nce_loss,
            dict(
                e_data=randn(B),
                e_noise=randn(8, seed=1),
                log_q_data=randn(B, seed=2),
                log_q_noise=randn(8, seed=3),
                reduction="none",
            ),
        ),
        rows=False,  # the output is the data rows, then the noise rows
        e_data=PAIR,
        e_noise=PAIR,
        log_q_data=PAIR,
        log_q_noise=PAIR,
        reduction=REDUCTION,
    ),
}

_HYPER = {
    "HingeLoss": dict(margin=POSITIVE),
    "LVQ2Loss": dict(cap=POSITIVE),
    "SquareSquareLoss": dict(margin=POSITIVE),
    "SquareExpLoss": dict(beta=POSITIVE),
    "NLLLoss": dict(beta=POSITIVE),
    "MEELoss": dict(beta=POSITIVE),
    "ContrastiveLoss": dict(margin=POSITIVE),
}
_PAIR_MODULES = ("HingeLoss", "LogLoss", "LVQ2Loss", "MCELoss", "SquareSquareLoss", "SquareExpLoss")
_CANDIDATE_MODULES = ("PerceptronLoss", "NLLLoss", "MEELoss")


def _loss_modules() -> dict:
    entries = {}
    for name in ("EnergyLoss", *_PAIR_MODULES, *_CANDIDATE_MODULES, "ContrastiveLoss"):
        cls = getattr(L, name)
        entries[f"ebm.losses.{name}"] = V(
            lambda cls=cls: (cls, {}), reduction=REDUCTION, **_HYPER.get(name, {})
        )
        if name == "EnergyLoss":
            forward = Fw(lambda cls=cls: (cls(reduction="none"), dict(p=randn(B))), p=ANY_SHAPE)
        elif name in _PAIR_MODULES:
            forward = Fw(lambda cls=cls: (cls(reduction="none"), _pn()), p=PAIR, n=PAIR)
        elif name in _CANDIDATE_MODULES:
            forward = Fw(
                lambda cls=cls: (cls(reduction="none"), _et()),
                # the module has no check_target switch: its CPU-only label check runs here
                sync_ok="the documented label check on CPU targets (skipped on accelerators)",
                E=CANDIDATES,
                target=TARGET,
            )
        else:
            forward = Fw(
                lambda cls=cls: (
                    cls(reduction="none"),
                    dict(d=rand(B), same=torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0])),
                ),
                sync_ok="the documented check of same on the CPU (skipped on accelerators)",
                d=PAIR,
                same=SAME,
            )
        entries[f"ebm.losses.{name}.forward"] = forward
    entries["ebm.losses.NCELoss"] = V(lambda: (L.NCELoss, {}), reduction=REDUCTION)
    entries["ebm.losses.NCELoss.forward"] = Fw(
        lambda: (
            L.NCELoss(reduction="none"),
            dict(
                e_data=randn(B),
                e_noise=randn(8, seed=1),
                log_q_data=randn(B, seed=2),
                log_q_noise=randn(8, seed=3),
            ),
        ),
        rows=False,
        e_data=PAIR,
        e_noise=PAIR,
        log_q_data=PAIR,
        log_q_noise=PAIR,
    )
    entries["ebm.losses.ContrastiveDivergenceLoss"] = V(
        lambda: (L.ContrastiveDivergenceLoss, dict(alpha=0.1)), alpha=NONNEGATIVE
    )
    entries["ebm.losses.ContrastiveDivergenceLoss.forward"] = Fw(
        lambda: (L.ContrastiveDivergenceLoss(0.1), dict(e_data=randn(B), e_model=randn(3, seed=1))),
        rows=False,
        e_data=Data(),
        e_model=Data(),
    )
    for fn, cls in (
        (L.ratio_matching_loss, L.RatioMatchingLoss),
        (L.mpf_loss, L.MPFLoss),
    ):
        entries[f"ebm.losses.{fn.__name__}"] = Fw(
            lambda fn=fn: (fn, dict(energy=_quadratic, x=_bits(), reduction="none")),
            energy=Fn(),
            x=Data(empty=True),
            reduction=REDUCTION,
        )
        entries[f"ebm.losses.{cls.__name__}"] = V(lambda cls=cls: (cls, {}), reduction=REDUCTION)
        entries[f"ebm.losses.{cls.__name__}.forward"] = Fw(
            lambda cls=cls: (cls(reduction="none"), dict(energy=_quadratic, x=_bits())),
            energy=Fn(),
            x=Data(empty=True),
        )
    return entries


def _bits() -> torch.Tensor:
    """(B, 3) binary data for the ratio-matching and MPF losses."""
    return (rand(B, 3, seed=4) > 0.5).float()


LOSSES.update(_loss_modules())


# ---- inference --------------------------------------------------------------------------------

_Y = randn(4, 2, seed=7)


def _to_candidates(c: torch.Tensor) -> torch.Tensor:
    """(n, 2) candidates -> (4, n) energies of four fixed problems."""
    return (_Y[:, None, :] - c[None]).pow(2).sum(-1)


def _restart_energy(v: torch.Tensor) -> torch.Tensor:
    return (v - 1.0).pow(2).sum(-1)


TIMES = Data(empty=True, promote=True, rows=False)
INFERENCE = {
    "ebm.inference.free_energy": Fw(
        lambda: (inf.free_energy, dict(E=randn(B, 6), beta=2.0, dim=-1)),
        E=Data(ndim=False, empty=False),
        beta=POSITIVE_OR_INF,
        dim=Int(-2, 1),
    ),
    "ebm.inference.soft_dtw": Fw(
        lambda: (inf.soft_dtw, dict(cost=rand(B, 4, 3), beta=2.0)),
        cost=Data(empty=False),
        beta=POSITIVE_OR_INF,
    ),
    "ebm.inference.expected_alignment": Fw(
        lambda: (inf.expected_alignment, dict(cost=rand(B, 4, 3), beta=2.0)),
        cost=Data(empty=False),
        beta=POSITIVE_OR_INF,
    ),
    "ebm.inference.exhaustive_search": Fw(
        lambda: (
            inf.exhaustive_search,
            dict(energy=_to_candidates, candidates=randn(6, 2), chunk_size=4),
        ),
        out=lambda r: r.energy,
        energy=Fn(),
        candidates=Data(ndim=False, empty=True, rows=False),
        backprop=Choice(),
    ),
    "ebm.inference.gradient_descent": Fw(
        lambda: (
            inf.gradient_descent,
            dict(energy=_restart_energy, init=randn(2, B, 2), n_steps=3),
        ),
        out=lambda r: r.energy,
        energy=Fn(),
        init=Data(ndim=False, empty=False, rows=1),
        lr=POSITIVE,
        momentum=Real(0, 1, high_inclusive=False),
        backprop=Choice(),
    ),
    "ebm.inference.lbfgs": Fw(
        lambda: (inf.lbfgs, dict(energy=_restart_energy, init=randn(2, B, 2), max_iter=3)),
        out=lambda r: r.energy,
        rows=False,  # one joint L-BFGS run: a NaN anywhere stops every problem's line search
        sync_ok="torch.optim.LBFGS reads the loss and gradient norms on the host",
        energy=Fn(),
        init=Data(ndim=False, empty=False, rows=False),
        lr=POSITIVE,
        history_size=Int(1),
        tolerance_grad=NONNEGATIVE,
        tolerance_change=NONNEGATIVE,
        backprop=Choice(),
    ),
    # adaptive ODE solvers cannot carry a NaN row (it poisons the shared step size), and they
    # synchronise anyway, so flows validate their starting points like samplers do
    "ebm.inference.flow": V(
        lambda: (
            inf.flow,
            dict(
                field=lambda y: -y,
                y0=randn(B, 2),
                t=torch.linspace(0, 1, 3),
                method="rk4",
                options=dict(step_size=0.25),
            ),
        ),
        field=Fn(),
        y0=Data(ndim=False),
        t=TIMES,
        method=Choice(),
        rtol=POSITIVE,
        atol=POSITIVE,
        options=Skip("solver options, passed to torchdiffeq"),
    ),
    "ebm.inference.gradient_flow": V(
        lambda: (
            inf.gradient_flow,
            dict(
                energy=_quadratic,
                y0=randn(B, 2),
                t=torch.linspace(0, 1, 3),
                method="rk4",
                options=dict(step_size=0.25),
            ),
        ),
        energy=Fn(),
        y0=Data(ndim=False),
        t=TIMES,
        method=Choice(),
        rtol=POSITIVE,
        atol=POSITIVE,
        options=Skip("solver options, passed to torchdiffeq"),
    ),
}


# ---- latent-variable energies ------------------------------------------------------------------


def _sq(y: torch.Tensor, z: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
    return (y - z).pow(2).sum(1)


def _horn() -> lat.HornEnergy:
    return det(lat.HornEnergy(hidden=(4,), n_z=8))


def _horn_inputs() -> dict:
    return dict(y=randn(B, 2), x=rand(B, 1, seed=1))


Y2 = Data(trailing=True, empty=False)
IMAGES = Data(empty=False)  # (B, C, H, W): a wider or taller canvas is valid, a smaller one not
LATENT = {
    "ebm.latent.LatentEnergy": V(
        lambda: (lat.LatentEnergy, dict(z_grid=torch.linspace(-1, 1, 5)[:, None], energy=_sq)),
        z_grid=Data(ndim=(1, 2)),
        energy=Fn(),
        inference=Choice(),
        inference_options=Skip("solver options, passed to ebm.inference"),
        beta=POSITIVE_OR_INF,
        lr=POSITIVE,
    ),
    "ebm.latent.EllipseEnergy": V(
        lambda: (lat.EllipseEnergy, dict(w=(2.0, 1.5), n_z=8)),
        w=Reals(),
        n_z=Int(1),
        inference=Choice(),
        inference_options=Skip("solver options, passed to ebm.inference"),
        beta=POSITIVE_OR_INF,
        lr=POSITIVE,
    ),
    "ebm.latent.HornEnergy": V(
        lambda: (lat.HornEnergy, dict(hidden=(4,), n_z=8)),
        hidden=Sizes(empty_ok=True),
        n_z=Int(1),
        inference=Choice(),
        inference_options=Skip("solver options, passed to ebm.inference"),
        beta=POSITIVE_OR_INF,
        lr=POSITIVE,
    ),
    "ebm.latent.LatentEnergy.energy": Fw(
        lambda: (
            lat.LatentEnergy(torch.linspace(-1, 1, 5)[:, None].expand(5, 2), energy=_sq).energy,
            dict(y=randn(B, 2), z=randn(B, 2, seed=1)),
        ),
        y=Data(ndim=False, empty=False, promote=False),  # passed through to the user's energy
        z=Data(ndim=False, empty=False, promote=False),
        x=Skip("passed through to the user's energy"),
    ),
    "ebm.latent.LatentEnergy.grid_energies": Fw(
        lambda: (_horn().grid_energies, dict(**_horn_inputs(), z=randn(6, 1, seed=2))),
        y=Y2,
        x=Data(trailing=True, empty=False),
        z=Data(ndim=False, empty=False, rows=False),
    ),
    "ebm.latent.LatentEnergy.free_energy": Fw(
        lambda: (_horn().free_energy, dict(**_horn_inputs(), beta=3.0)),
        out=lambda r: r.free_energy,
        y=Y2,
        x=Data(trailing=True, empty=False),
        beta=POSITIVE_OR_INF,
    ),
    "ebm.latent.LatentEnergy.forward": Fw(
        lambda: (_horn(), _horn_inputs()), y=Y2, x=Data(trailing=True, empty=False)
    ),
    "ebm.latent.EllipseEnergy.decode": Fw(
        lambda: (lat.EllipseEnergy(n_z=8).decode, dict(z=rand(B, 1))),
        z=Data(ndim=False, empty=False),
    ),
    "ebm.latent.EllipseEnergy.energy": Fw(
        lambda: (lat.EllipseEnergy(n_z=8).energy, dict(y=randn(B, 2), z=rand(B, 1, seed=1))),
        y=Y2,
        z=Data(ndim=False, empty=False),
        x=IGNORED_X,
    ),
    "ebm.latent.HornEnergy.decode": Fw(
        lambda: (_horn().decode, dict(z=rand(B, 1), x=rand(B, 1, seed=1))),
        z=Data(ndim=False, empty=False),
        x=Data(ndim=False, empty=False),
    ),
    "ebm.latent.TemplateEnergy": V(
        lambda: (lat.TemplateEnergy, dict(templates=rand(3, 1, 2, 2))),
        templates=Data(ndim=(4,)),
        beta=POSITIVE_OR_INF,
    ),
    "ebm.latent.TemplateEnergy.energy_map": Fw(
        lambda: (lat.TemplateEnergy(rand(3, 1, 2, 2)).energy_map, dict(x=rand(B, 1, 4, 5, seed=1))),
        x=IMAGES,
    ),
    "ebm.latent.TemplateEnergy.free_energy": Fw(
        lambda: (
            lat.TemplateEnergy(rand(3, 1, 2, 2)).free_energy,
            dict(x=rand(B, 1, 4, 5, seed=1), beta=2.0),
        ),
        out=lambda r: r.free_energy,
        x=IMAGES,
        beta=Skip("None or a positive real, the model's beta by default"),
    ),
    "ebm.latent.TemplateEnergy.forward": Fw(
        lambda: (lat.TemplateEnergy(rand(3, 1, 2, 2)), dict(x=rand(B, 1, 4, 5, seed=1))),
        x=IMAGES,
    ),
    "ebm.latent.HornEnergy.energy": Fw(
        lambda: (_horn().energy, dict(**_horn_inputs(), z=rand(B, 1, seed=2))),
        y=Y2,
        z=Data(ndim=False, empty=False),
        x=Data(trailing=True, empty=False),
    ),
}


# ---- score matching ---------------------------------------------------------------------------

_X = Data(empty=False)  # (B, D); the energy decides D
SCORE_MATCHING = {
    "ebm.score_matching.exact_score_matching_loss": Fw(
        lambda: (sm.exact_score_matching_loss, dict(energy=_quadratic, x=randn(B, 2))),
        rows=False,
        energy=Fn(),
        x=_X,
    ),
    "ebm.score_matching.sliced_score_matching_loss": Fw(
        lambda: (
            sm.sliced_score_matching_loss,
            dict(energy=_quadratic, x=randn(B, 2), n_projections=2, generator=gen(1)),
        ),
        rows=False,
        energy=Fn(),
        x=_X,
    ),
    "ebm.score_matching.denoising_score_matching_loss": Fw(
        lambda: (
            sm.denoising_score_matching_loss,
            dict(energy=_quadratic, x=randn(B, 2), sigma=0.1, generator=gen(1)),
        ),
        rows=False,
        energy=Fn(),
        x=_X,
        sigma=POSITIVE,
    ),
}


# ---- sampling ---------------------------------------------------------------------------------

# (B, ...): the energy decides the event shape. Samplers run in EBM training's hot loop: they do
# not read x0's values (no host sync), so NaN/inf in x0 propagates to that chain's output row.
_X0 = Data(ndim=False, finite=False)


def _buffer() -> smp.ReplayBuffer:
    return smp.ReplayBuffer(8, (2,), seed=0)


def _pushed(states: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """ReplayBuffer.push, then what the slots hold: the stored rows follow the pushed rows."""
    buffer = _buffer()
    buffer.push(states=states, idx=idx)
    return buffer.samples[idx]


SAMPLING = {
    "ebm.sampling.ReplayBuffer": V(
        lambda: (smp.ReplayBuffer, dict(capacity=8, shape=(2,), seed=0)),
        capacity=Int(1),
        shape=Sizes(),
        reinit_prob=Real(0, 1),
        noise=Choice(),
        scale=POSITIVE,
    ),
    "ebm.sampling.ReplayBuffer.draw_noise": V(
        lambda: (_buffer().draw_noise, dict(n=3, generator=gen(1)))
    ),
    "ebm.sampling.ReplayBuffer.sample": V(
        lambda: (_buffer().sample, dict(n=3, generator=gen(1))), n=Int(1, 8)
    ),
    "ebm.sampling.ReplayBuffer.advance": V(
        lambda: (_buffer().advance, dict(n=3, kernel=lambda x: x + 1.0, generator=gen(1))),
        n=Int(1, 8),
        kernel=Fn(),
    ),
    "ebm.sampling.ReplayBuffer.reset": V(lambda: (_buffer().reset, dict(generator=gen(1)))),
    "ebm.sampling.ReplayBuffer.push": Fw(  # the training loop's hot path: stores what it is given
        lambda: (_pushed, dict(states=randn(3, 2), idx=torch.tensor([0, 5, 7]))),
        states=Data(trailing=True, empty=False),
        idx=Labels(8, empty=False),
    ),
    "ebm.sampling.effective_sample_size": V(
        lambda: (smp.effective_sample_size, dict(samples=randn(16, 3, 2))),
        samples=Data(ndim=(2, 3, 4, 5, 6)),
    ),
    "ebm.sampling.langevin": V(
        lambda: (
            smp.langevin,
            dict(
                energy=_quadratic,
                x0=randn(B, 2),
                n_steps=3,
                step_size=0.1,
                clamp=(-3.0, 3.0),
                generator=gen(1),
            ),
        ),
        energy=Fn(),
        x0=_X0,
        n_steps=Int(0),
        step_size=POSITIVE,
        noise_scale=NONNEGATIVE,
        clamp=Interval(ordered=True, inf=True),
    ),
    "ebm.sampling.mala": V(
        lambda: (
            smp.mala,
            dict(energy=_quadratic, x0=randn(B, 2), n_steps=3, step_size=0.1, generator=gen(1)),
        ),
        energy=Fn(),
        x0=_X0,
        n_steps=Int(0),
        step_size=POSITIVE,
    ),
    "ebm.sampling.uniform_jump": V(
        lambda: (
            smp.uniform_jump,
            dict(energy=_quadratic, x0=rand(B, 2), n_steps=3, low=-1.0, high=1.0, generator=gen(1)),
        ),
        energy=Fn(),
        x0=_X0,
        n_steps=Int(0),
        low=Real(),
        high=Real(),
    ),
    "ebm.sampling.hmc": V(
        lambda: (
            smp.hmc,
            dict(
                energy=_quadratic,
                x0=randn(B, 2),
                n_steps=2,
                step_size=0.1,
                n_leapfrog=2,
                mass=2.0,
                generator=gen(1),
            ),
        ),
        energy=Fn(),
        x0=_X0,
        n_steps=Int(0),
        step_size=POSITIVE,
        n_leapfrog=Int(1),
        mass=POSITIVE,
    ),
}

_AIS_KNOBS = dict(
    n_temps=Int(1),
    base_std=POSITIVE,
    kernel=Choice(),
    n_steps=Int(1),
    step_size=POSITIVE,
    n_leapfrog=Int(1),
    schedule=Choice(),
)
SAMPLING.update(
    {
        "ebm.sampling.ais": V(
            lambda: (
                smp.ais,
                dict(energy=_quadratic, dim=2, n_chains=4, n_temps=3, generator=gen(1)),
            ),
            energy=Fn(),
            dim=Int(1),
            n_chains=Int(2),
            **_AIS_KNOBS,
        ),
        "ebm.sampling.reverse_ais": V(
            lambda: (
                smp.reverse_ais,
                dict(energy=_quadratic, samples=randn(4, 2), n_temps=3, generator=gen(1)),
            ),
            energy=Fn(),
            samples=Data(ndim=False),  # (n, *event): the energy decides the event shape
            **_AIS_KNOBS,
        ),
        "ebm.sampling.grid_sample": V(
            lambda: (
                smp.grid_sample,
                dict(energy=_quadratic, n=4, low=-1.0, high=1.0, dim=2, cells=5, generator=gen(1)),
            ),
            energy=Fn(),
            low=Real(),
            high=Real(),
            cells=Int(1),
            device=Choice(),
        ),
        "ebm.sampling.grid_log_partition": V(
            lambda: (
                smp.grid_log_partition,
                dict(energy=_quadratic, low=-1.0, high=1.0, dim=2, cells=5, chunk_size=7),
            ),
            energy=Fn(),
            low=Real(),
            high=Real(),
            cells=Int(1),
            device=Choice(),
        ),
        "ebm.sampling.log_likelihood": V(
            lambda: (smp.log_likelihood, dict(energy=_quadratic, x=randn(B, 2), log_z=1.5)),
            energy=Fn(),
            x=Data(ndim=False),
            log_z=Real(),
        ),
    }
)


class _Ladder(Spec):
    """Inverse temperatures 1 = β_0 ≥ β_1 ≥ … > 0 (``parallel_tempering``'s betas)."""

    def bad(self, entry_kind: str) -> dict:
        def just(value):
            return Bad(lambda valid: st.just(value), RAISE, 1)

        return {
            "nonfinite": Bad(
                lambda v: st.sampled_from([(1.0, NAN), (1.0, float("inf"))]), RAISE, 2
            ),
            "not_one": just((0.5, 0.25)),
            "ascending": just((0.25, 0.5, 1.0)),
            "zero": just((1.0, 0.0)),
            "negative": just((1.0, -0.5)),
            "empty": just(()),
            "ndim": just([[1.0, 0.5]]),
            "str": just("1.0"),
        }


SAMPLING["ebm.sampling.parallel_tempering"] = V(
    lambda: (
        smp.parallel_tempering,
        dict(
            energy=_quadratic,
            x0=randn(B, 2),
            betas=(1.0, 0.5),
            n_steps=3,
            step_size=0.1,
            generator=gen(1),
        ),
    ),
    energy=Fn(),
    x0=Data(ndim=False),  # checked finite once: not a training hot-loop sampler
    betas=_Ladder(),
    n_steps=Int(0),
    step_size=POSITIVE,
    swap_every=Int(1),
    kernel=Choice(),
    compile=Choice(),
)


CORE = {**ENERGIES, **LOSSES, **INFERENCE, **LATENT, **SCORE_MATCHING, **SAMPLING}
