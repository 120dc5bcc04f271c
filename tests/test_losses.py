import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import ebm.losses as L

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def candidates(B=6, K=4, seed=0, scale=1.0, dtype=F64):
    g = gen(seed)
    E = scale * torch.randn(B, K, generator=g, dtype=dtype)
    target = torch.randint(0, K, (B,), generator=g)
    return E, target


def t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


# ---- closed forms on hand-computable inputs ---------------------------------------------------


P, N = t(1.0, -2.0, 0.5), t(3.0, 0.0, 0.5)  # p − n = (−2, −2, 0)


def test_energy_loss_is_p():
    assert torch.equal(L.energy_loss(P, reduction="none"), P)
    assert L.energy_loss(P).item() == pytest.approx(-0.5 / 3)


def test_hinge_closed_form():
    assert L.hinge_loss(P, N, reduction="none").tolist() == [0.0, 0.0, 1.0]
    assert L.hinge_loss(P, N, margin=3.0, reduction="none").tolist() == [1.0, 1.0, 3.0]


def test_log_loss_closed_form():
    want = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-2)), math.log(2)]
    assert L.log_loss(P, N, reduction="none").tolist() == pytest.approx(want)


def test_lvq2_closed_form():
    p, n = t(3.0, 1.0, -1.0, 0.25), t(1.0, 0.5, 0.0, 0.0)  # p − n = (2, 0.5, −1, 0.25)
    assert L.lvq2_loss(p, n, reduction="none").tolist() == [1.0, 0.5, 0.0, 0.25]
    assert L.lvq2_loss(p, n, cap=0.3, reduction="none").tolist() == [0.3, 0.3, 0.0, 0.25]


def test_mce_closed_form():
    want = [1 / (1 + math.exp(2)), 1 / (1 + math.exp(2)), 0.5]
    assert L.mce_loss(P, N, reduction="none").tolist() == pytest.approx(want)


def test_square_square_has_a_plus():
    # p² + max(0, 1 − n)²: (1 + 0, 4 + 1, 0.25 + 0.25)
    assert L.square_square_loss(P, N, reduction="none").tolist() == [1.0, 5.0, 0.5]
    # raising the wrong answer's energy lowers the loss (the notes' minus would raise it)
    lower = L.square_square_loss(t(0.0), t(0.2)) > L.square_square_loss(t(0.0), t(0.8))
    assert lower.item()


def test_square_exp_closed_form():
    want = [1 + 2 * math.exp(-3), 4 + 2.0, 0.25 + 2 * math.exp(-0.5)]
    assert L.square_exp_loss(P, N, beta=2.0, reduction="none").tolist() == pytest.approx(want)


E0 = t(1.0, 2.0, 3.0, 0.5, -1.0, 4.0).reshape(2, 3)
T0 = torch.tensor([2, 0])


def test_perceptron_and_most_offending_closed_form():
    assert L.perceptron_loss(E0, T0, reduction="none").tolist() == [2.0, 1.5]
    assert L.most_offending(E0, T0).tolist() == [1.0, -1.0]
    p, n = L.correct_and_offending(E0, T0)
    assert p.tolist() == [3.0, 0.5] and n.tolist() == [1.0, -1.0]


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_nll_and_mee_closed_form(beta):
    rows, targets = E0.tolist(), T0.tolist()
    z = [sum(math.exp(-beta * e) for e in row) for row in rows]
    nll = [row[k] + math.log(zi) / beta for row, k, zi in zip(rows, targets, z)]
    mee = [1 - math.exp(-beta * row[k]) / zi for row, k, zi in zip(rows, targets, z)]
    assert L.nll_loss(E0, T0, beta, reduction="none").tolist() == pytest.approx(nll, rel=1e-12)
    assert L.mee_loss(E0, T0, beta, reduction="none").tolist() == pytest.approx(mee, rel=1e-12)


def test_contrastive_closed_form():
    d, same = t(0.5, 0.5, 2.0, 0.0), torch.tensor([True, False, False, True])
    assert L.contrastive_loss(d, same, reduction="none").tolist() == [0.125, 0.125, 0.0, 0.0]
    assert L.contrastive_loss(d, same, margin=3.0, reduction="none").tolist() == [
        0.125,
        3.125,
        0.5,
        0.0,
    ]
    # float weights in [0, 1] mix the two terms; 0/1 weights equal the bool version
    w = same.to(F64)
    assert torch.equal(
        L.contrastive_loss(d, w, reduction="none"), L.contrastive_loss(d, same, reduction="none")
    )
    half = L.contrastive_loss(t(0.5), t(0.5), reduction="none")
    assert half.item() == pytest.approx(0.5 * 0.125 + 0.5 * 0.125)


def test_contrastive_divergence_closed_form():
    e_data, e_model = t(1.0, 2.0, 3.0), t(0.0, 4.0)  # different batch sizes
    assert L.contrastive_divergence_loss(e_data, e_model).item() == pytest.approx(0.0)
    # 2 − 2 + 0.5·(14/3 + 8)
    want = 0.5 * (14 / 3 + 8)
    assert L.contrastive_divergence_loss(e_data, e_model, alpha=0.5).item() == pytest.approx(want)
    e_data.requires_grad_(True)
    L.contrastive_divergence_loss(e_data, e_model).backward()
    assert torch.allclose(e_data.grad, torch.full((3,), 1 / 3, dtype=F64))


# ---- identities and limits --------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_beta_one_is_cross_entropy(reduction):
    E, target = candidates(B=32, K=7, seed=1, scale=3.0)
    ours = L.nll_loss(E, target, reduction=reduction)
    torch.testing.assert_close(ours, F.cross_entropy(-E, target, reduction=reduction))


def test_nll_tends_to_perceptron_within_log_k_over_beta():
    E, target = candidates(B=64, K=5, seed=2)
    perceptron = L.perceptron_loss(E, target, reduction="none")
    gaps = []
    for beta in [1.0, 10.0, 100.0, 1e4]:
        gap = L.nll_loss(E, target, beta, reduction="none") - perceptron
        # 0 <= (1/β)·log Σ exp(−β(E − min E)) <= log(K)/β
        assert (gap >= -1e-12).all() and (gap <= math.log(5) / beta + 1e-12).all()
        gaps.append(gap.max().item())
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3


def test_mee_tends_to_zero_one_loss():
    E, target = candidates(B=200, K=3, seed=3)
    wrong = (E.argmin(1) != target).to(F64)
    lowest_two = E.topk(2, dim=1, largest=False).values
    gap = lowest_two[:, 1] - lowest_two[:, 0]
    for beta in (10.0, 1e3, 1e5):
        error = (L.mee_loss(E, target, beta=beta, reduction="none") - wrong).abs()
        # the Gibbs mass off the argmin is at most (K − 1)·exp(−β·gap)
        assert (error <= 2 * torch.exp(-beta * gap) + 1e-12).all()
    assert error.max() < 1e-9  # β = 1e5: every row's gap here exceeds 1e-3
    # and is the Gibbs probability of a mistake, exp(−β·nll) being the probability of the target
    nll = L.nll_loss(E, target, beta=2.0, reduction="none")
    torch.testing.assert_close(
        L.mee_loss(E, target, 2.0, reduction="none"), 1 - torch.exp(-2.0 * nll)
    )


def test_two_candidates_link_the_families():
    # with K = 2, n is the other energy: nll = log loss and mee = mce (β = 1)
    E, target = candidates(B=50, K=2, seed=4, scale=4.0)
    p, n = L.correct_and_offending(E, target)
    torch.testing.assert_close(
        L.nll_loss(E, target, reduction="none"), L.log_loss(p, n, reduction="none")
    )
    torch.testing.assert_close(
        L.mee_loss(E, target, reduction="none"), L.mce_loss(p, n, reduction="none")
    )
    torch.testing.assert_close(L.perceptron_loss(E, target, reduction="none"), F.relu(p - n))


def test_log_loss_is_a_soft_hinge():
    x = torch.linspace(-30, 30, 121, dtype=F64)
    soft = L.log_loss(x, torch.zeros_like(x), reduction="none")
    assert (soft >= F.relu(x)).all() and (soft - F.relu(x) <= math.log(2) + 1e-12).all()
    torch.testing.assert_close(soft, torch.log1p(torch.exp(x)))


def test_most_offending_never_picks_the_target_and_splits_ties():
    E = t(0.0, 0.0, 5.0, 1.0, 2.0, 2.0).reshape(2, 3).requires_grad_(True)
    n = L.most_offending(E, torch.tensor([0, 1]))
    assert n.tolist() == [0.0, 1.0]  # row 0: the tie with the target is the other 0
    n.sum().backward()
    assert E.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


# ---- gradcheck in float64 ---------------------------------------------------------------------


def _pair(seed, B=5):
    g = gen(seed)
    p = torch.rand(B, generator=g, dtype=F64).requires_grad_(True)
    n = (torch.rand(B, generator=g, dtype=F64) + 0.5).requires_grad_(True)
    return p, n


PAIR_LOSSES = {
    "hinge": lambda p, n, r: L.hinge_loss(p, n, 0.7, r),
    "log": lambda p, n, r: L.log_loss(p, n, r),
    "lvq2": lambda p, n, r: L.lvq2_loss(p + 0.6, n, 0.45, r),
    "mce": lambda p, n, r: L.mce_loss(p, n, r),
    "square_square": lambda p, n, r: L.square_square_loss(p, n, 1.2, r),
    "square_exp": lambda p, n, r: L.square_exp_loss(p, n, 0.8, r),
}
CANDIDATE_LOSSES = {
    "perceptron": lambda E, y, r: L.perceptron_loss(E, y, r),
    "nll": lambda E, y, r: L.nll_loss(E, y, 1.0, r),
    "nll_beta": lambda E, y, r: L.nll_loss(E, y, 2.5, r),
    "mee": lambda E, y, r: L.mee_loss(E, y, 1.5, r),
    "most_offending": lambda E, y, r: L.most_offending(E, y),
}


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_pair_losses(name, reduction):
    p, n = _pair(seed=len(name))
    # keep away from the kinks of hinge, LVQ2 and square-square (finite differences need it)
    kinks = {
        "hinge": 0.7 + p - n,
        "lvq2": p + 0.6 - n,
        "lvq2_cap": p + 0.6 - n - 0.45,
        "square_square": 1.2 - n,
    }
    assert all((v.abs() > 1e-3).all() for v in kinks.values())
    assert torch.autograd.gradcheck(lambda a, b: PAIR_LOSSES[name](a, b, reduction), (p, n))


@pytest.mark.parametrize("name", sorted(CANDIDATE_LOSSES))
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_gradcheck_candidate_losses(name, reduction):
    E, target = candidates(B=5, K=4, seed=5)
    E.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: CANDIDATE_LOSSES[name](e, target, reduction), (E,))


def test_gradcheck_energy_contrastive_and_cd_losses():
    g = gen(6)
    d = (torch.rand(8, generator=g, dtype=F64) * 2).requires_grad_(True)
    same = torch.arange(8) % 2 == 0
    weights = torch.rand(8, generator=g, dtype=F64)
    assert ((1.0 - d).abs() > 1e-3).all()
    assert torch.autograd.gradcheck(lambda x: L.energy_loss(x, "none"), (d,))
    assert torch.autograd.gradcheck(lambda x: L.contrastive_loss(x, same, 1.0, "none"), (d,))
    assert torch.autograd.gradcheck(lambda x: L.contrastive_loss(x, weights, 1.0, "sum"), (d,))
    e_model = torch.randn(3, generator=g, dtype=F64).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: L.contrastive_divergence_loss(a, b, alpha=0.3), (d, e_model)
    )


def test_contrastive_gradient_is_finite_at_zero_distance():
    d = torch.zeros(2, requires_grad=True)
    L.contrastive_loss(d, torch.tensor([True, False])).backward()
    assert d.grad.tolist() == [0.0, -0.5]  # pull: d·(1/2) = 0; push: −(m − d)/2 at m = 1


# ---- stability at |E| = 1e4 -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("beta", [1.0, 1e3])
def test_candidate_losses_finite_at_large_energies(dtype, beta):
    g = gen(7)
    sign = torch.randint(0, 2, (64, 10), generator=g) * 2 - 1
    E = (1e4 * sign).to(dtype).requires_grad_(True)
    target = torch.randint(0, 10, (64,), generator=g)
    for loss in (
        L.nll_loss(E, target, beta),
        L.mee_loss(E, target, beta),
        L.perceptron_loss(E, target),
        L.most_offending(E, target).mean(),
    ):
        (grad,) = torch.autograd.grad(loss, E)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_nll_exact_at_large_energies():
    E = torch.tensor([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], requires_grad=True)
    nll = L.nll_loss(E, torch.tensor([0, 1]), reduction="none")
    # log Σ exp(−E) = 1e4 + log(1 + e^{−1e4} + e^{−2e4}) = 1e4 to float precision
    assert nll.tolist() == [2e4, 0.0]
    nll.sum().backward()
    # d/dE = onehot(target) − softmax(−E): softmax puts all mass on the −1e4 entry
    assert E.grad.tolist() == [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_pair_losses_finite_at_large_energies(name):
    g = gen(8)
    p = (1e4 * (torch.randint(0, 2, (64,), generator=g) * 2 - 1)).float().requires_grad_(True)
    n = (1e4 * (torch.randint(0, 2, (64,), generator=g) * 2 - 1)).float()
    if name == "square_exp":
        n = n.abs()  # exp(−n) for n = −1e4 is truly beyond float range (documented)
    n.requires_grad_(True)
    loss = PAIR_LOSSES[name](p, n, "mean")
    grads = torch.autograd.grad(loss, (p, n))
    assert torch.isfinite(loss) and all(torch.isfinite(gr).all() for gr in grads)


def test_contrastive_finite_at_large_distances():
    d = torch.full((4,), 1e4, requires_grad=True)
    loss = L.contrastive_loss(d, torch.tensor([True, False, True, False]))
    loss.backward()
    assert loss.item() == pytest.approx(0.25 * 1e8) and torch.isfinite(d.grad).all()


# ---- reductions follow torch ------------------------------------------------------------------


ALL_PAIR = {**PAIR_LOSSES, "energy": lambda p, n, r: L.energy_loss(p, r)}


@pytest.mark.parametrize("name", sorted(ALL_PAIR))
def test_pair_reductions_follow_torch(name):
    g = gen(9)
    p, n = torch.rand(3, 4, generator=g, dtype=F64), torch.rand(3, 4, generator=g, dtype=F64) + 1
    none = ALL_PAIR[name](p, n, "none")
    assert none.shape == (3, 4)  # elementwise, like torch's losses with reduction="none"
    torch.testing.assert_close(ALL_PAIR[name](p, n, "sum"), none.sum())
    torch.testing.assert_close(ALL_PAIR[name](p, n, "mean"), none.mean())
    assert ALL_PAIR[name](p, n, "mean").ndim == 0


@pytest.mark.parametrize("name", ["perceptron", "nll_beta", "mee"])
def test_candidate_reductions_follow_torch(name):
    E, target = candidates(B=9, K=3, seed=10)
    none = CANDIDATE_LOSSES[name](E, target, "none")
    assert none.shape == (9,)
    torch.testing.assert_close(CANDIDATE_LOSSES[name](E, target, "sum"), none.sum())
    torch.testing.assert_close(CANDIDATE_LOSSES[name](E, target, "mean"), none.mean())


def test_reduction_matches_torch_hinge_embedding_loss():
    # torch's HingeEmbeddingLoss on y = −1 is max(0, margin − x): our hinge with p = 0, n = x
    x = torch.rand(10, generator=gen(11), dtype=F64) * 3
    for reduction in ("mean", "sum", "none"):
        ref = F.hinge_embedding_loss(x, -torch.ones_like(x), margin=1.5, reduction=reduction)
        torch.testing.assert_close(L.hinge_loss(torch.zeros_like(x), x, 1.5, reduction), ref)


def test_losses_keep_dtype():
    p, n = torch.rand(4, dtype=torch.float32), torch.rand(4, dtype=torch.float32)
    E, target = candidates(dtype=torch.float32)
    assert L.hinge_loss(p, n).dtype == torch.float32
    assert L.nll_loss(E, target, beta=2.0).dtype == torch.float32
    assert L.mee_loss(E.double(), target).dtype == F64


def test_int32_targets_work():
    E, target = candidates(seed=12)
    torch.testing.assert_close(L.nll_loss(E, target.int()), L.nll_loss(E, target))


def test_nll_compiles_without_graph_breaks():
    E, target = candidates(seed=13)
    compiled = torch.compile(L.nll_loss, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(E, target), L.nll_loss(E, target))


# ---- properties (hypothesis) ------------------------------------------------------------------

floats = st.floats(-50, 50, allow_nan=False, allow_subnormal=False)
pairs = st.lists(st.tuples(floats, floats), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(pairs, st.floats(0.01, 10), st.floats(-20, 20))
def test_pair_loss_properties(pn, margin, shift):
    p, n = t(*[a for a, _ in pn]), t(*[b for _, b in pn])
    hinge = L.hinge_loss(p, n, margin, "none")
    assert (hinge >= 0).all() and (hinge >= margin + p - n - 1e-12).all()
    lvq2 = L.lvq2_loss(p, n, margin, "none")
    assert ((lvq2 >= 0) & (lvq2 <= margin)).all()
    mce = L.mce_loss(p, n, "none")
    assert ((mce >= 0) & (mce <= 1)).all()
    assert (L.square_square_loss(p, n, margin, "none") >= 0).all()
    # margin losses depend on p − n only: shifting both energies changes nothing
    for fn in (L.hinge_loss, L.log_loss, L.mce_loss):
        torch.testing.assert_close(
            fn(p + shift, n + shift, reduction="none"), fn(p, n, reduction="none")
        )
    # every margin loss is non-decreasing in p and non-increasing in n
    for fn in (L.hinge_loss, L.log_loss, L.lvq2_loss, L.mce_loss):
        assert (fn(p + 1, n, reduction="none") >= fn(p, n, reduction="none")).all()
        assert (fn(p, n + 1, reduction="none") <= fn(p, n, reduction="none")).all()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.just(k), st.lists(st.lists(floats, min_size=k, max_size=k), min_size=1, max_size=8)
        )
    ),
    st.data(),
    st.floats(0.1, 20),
)
def test_candidate_loss_properties(k_rows, data, beta):
    K, rows = k_rows
    E = t(*[v for row in rows for v in row]).reshape(len(rows), K)
    target = torch.tensor(
        data.draw(st.lists(st.integers(0, K - 1), min_size=len(rows), max_size=len(rows)))
    )
    perceptron = L.perceptron_loss(E, target, reduction="none")
    nll = L.nll_loss(E, target, beta, reduction="none")
    mee = L.mee_loss(E, target, beta, reduction="none")
    assert (perceptron >= 0).all()
    assert ((perceptron == 0) == (E[torch.arange(len(rows)), target] == E.amin(1))).all()
    assert (nll >= perceptron - 1e-9).all() and (
        nll <= perceptron + math.log(K) / beta + 1e-9
    ).all()
    assert ((mee >= 0) & (mee <= 1)).all()
    n = L.most_offending(E, target)
    others = E.masked_fill(F.one_hot(target, K).bool(), float("inf"))
    assert (n == others.amin(1)).all() and (n[:, None] <= others).all()
    # shifting every candidate of a row by the same amount changes nothing
    shifted = E + 7.0
    torch.testing.assert_close(L.nll_loss(shifted, target, beta, reduction="none"), nll)
    torch.testing.assert_close(L.perceptron_loss(shifted, target, reduction="none"), perceptron)


# ---- modules ------------------------------------------------------------------------------------


def test_modules_call_their_functions():
    p, n = _pair(seed=14)
    E, target = candidates(seed=14)
    d, same = p.detach(), torch.tensor([True, False, True, False, True])
    cases = [
        (L.EnergyLoss(reduction="sum"), (p,), L.energy_loss(p, "sum")),
        (L.PerceptronLoss(), (E, target), L.perceptron_loss(E, target)),
        (L.HingeLoss(margin=0.3), (p, n), L.hinge_loss(p, n, 0.3)),
        (L.LogLoss(reduction="none"), (p, n), L.log_loss(p, n, "none")),
        (L.LVQ2Loss(cap=0.2), (p, n), L.lvq2_loss(p, n, 0.2)),
        (L.MCELoss(), (p, n), L.mce_loss(p, n)),
        (L.SquareSquareLoss(margin=2.0), (p, n), L.square_square_loss(p, n, 2.0)),
        (L.SquareExpLoss(beta=0.5), (p, n), L.square_exp_loss(p, n, 0.5)),
        (L.NLLLoss(beta=3.0), (E, target), L.nll_loss(E, target, 3.0)),
        (L.MEELoss(beta=3.0), (E, target), L.mee_loss(E, target, 3.0)),
        (L.ContrastiveLoss(margin=0.8), (d, same), L.contrastive_loss(d, same, 0.8)),
        (L.ContrastiveDivergenceLoss(alpha=0.1), (p, n), L.contrastive_divergence_loss(p, n, 0.1)),
    ]
    for module, args, expected in cases:
        torch.testing.assert_close(module(*args), expected)
    assert repr(L.HingeLoss(margin=0.3)) == "HingeLoss(margin=0.3, reduction='mean')"


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: L.HingeLoss(margin=0.0), "margin"),
        (lambda: L.HingeLoss(margin=float("inf")), "margin"),
        (lambda: L.HingeLoss(margin="1"), "margin"),
        (lambda: L.HingeLoss(margin=True), "margin"),
        (lambda: L.LVQ2Loss(cap=-1.0), "cap"),
        (lambda: L.SquareSquareLoss(margin=float("nan")), "margin"),
        (lambda: L.SquareExpLoss(beta=0), "beta"),
        (lambda: L.NLLLoss(beta=float("inf")), "beta"),
        (lambda: L.MEELoss(beta=-2.0), "beta"),
        (lambda: L.MEELoss(beta=float("nan")), "beta"),
        (lambda: L.ContrastiveLoss(margin=-1.0), "margin"),
        (lambda: L.ContrastiveDivergenceLoss(alpha=-0.1), "alpha"),
        (lambda: L.ContrastiveDivergenceLoss(alpha=float("nan")), "alpha"),
        (lambda: L.ContrastiveDivergenceLoss(alpha=float("inf")), "alpha"),
        (lambda: L.LogLoss(reduction="avg"), "reduction"),
    ],
)
def test_modules_validate_hyper_parameters(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_integer_and_array_like_energies_are_promoted():
    # integer energies are promoted to float, never truncated or refused
    p, n = torch.tensor([1, 3, 0]), torch.tensor([2, 2, 5])
    expected = L.log_loss(p.float(), n.float(), reduction="none")
    torch.testing.assert_close(L.log_loss(p, n, reduction="none"), expected)
    torch.testing.assert_close(L.log_loss([1, 3, 0], np.array([2, 2, 5])), expected.mean())
    torch.testing.assert_close(L.energy_loss([1, 2]), torch.tensor(1.5))
    E = torch.tensor([[0, 3, 1], [2, 1, 4]])
    target = [2, 0]
    torch.testing.assert_close(
        L.nll_loss(E, target, beta=0.5), L.nll_loss(E.float(), torch.tensor(target), beta=0.5)
    )
    assert L.perceptron_loss(E, torch.tensor(target)).item() == pytest.approx(1.0)
    e_data, e_model = torch.tensor([1, 2]), np.array([3.0, 5.0])
    assert L.contrastive_divergence_loss(e_data, e_model).item() == pytest.approx(1.5 - 4.0)


def test_contrastive_same_labels_and_weights():
    d = torch.tensor([0.2, 0.5, 1.5], dtype=F64)
    pull, push = 0.5 * d**2, 0.5 * torch.relu(1 - d) ** 2
    as_bool = L.contrastive_loss(d, torch.tensor([True, False, True]), reduction="none")
    torch.testing.assert_close(as_bool, torch.stack([pull[0], push[1], pull[2]]))
    # 0/1 integer labels mean the same as bools; a list works too
    torch.testing.assert_close(L.contrastive_loss(d, [1, 0, 1], reduction="none"), as_bool)
    # weights in [0, 1] mix the terms, and the loss is never negative
    w = torch.tensor([0.0, 0.25, 1.0], dtype=F64)
    mixed = L.contrastive_loss(d, w, reduction="none")
    torch.testing.assert_close(mixed, w * pull + (1 - w) * push)
    assert (mixed >= 0).all()
    # a weight of 2 made the old loss negative (2·pull − push < 0): refused on the CPU
    with pytest.raises(ValueError, match=r"same must hold floating weights in \[0, 1\]"):
        L.contrastive_loss(torch.tensor([0.1]), torch.tensor([2.0]))
    with pytest.raises(ValueError, match="same must hold"):
        L.ContrastiveLoss()(torch.tensor([0.1]), torch.tensor([-0.5]))
    # check_same=False skips the value check (what accelerators do by default)
    unchecked = L.contrastive_loss(torch.tensor([0.1]), torch.tensor([2.0]), check_same=False)
    assert unchecked.item() < 0
    with pytest.raises(ValueError, match="check_same"):
        L.contrastive_loss(d, w, check_same="yes")


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_pair_losses_refuse_mismatched_shapes(name):
    with pytest.raises(ValueError, match=r"p \(3,\) and n \(4,\)"):
        PAIR_LOSSES[name](torch.zeros(3), torch.zeros(4), "mean")
    with pytest.raises(ValueError, match="no broadcasting"):
        PAIR_LOSSES[name](torch.zeros(3, 1), torch.zeros(3), "mean")


@pytest.mark.parametrize("name", ["perceptron", "nll", "mee", "most_offending"])
def test_candidate_losses_refuse_bad_targets_and_shapes(name):
    fn = CANDIDATE_LOSSES[name]
    E = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\).*got values in \[0, 3\]"):
        fn(E, torch.tensor([0, 1, 2, 3]), "mean")
    with pytest.raises(ValueError, match="target must lie"):
        fn(E, torch.tensor([0, -1, 2, 1]), "mean")
    with pytest.raises(ValueError, match="integer labels.*float32"):
        fn(E, torch.zeros(4), "mean")
    with pytest.raises(ValueError, match="integer labels.*bool"):
        fn(E, torch.zeros(4, dtype=torch.bool), "mean")
    with pytest.raises(ValueError, match=r"target must have shape \(4,\).*got \(5,\)"):
        fn(E, torch.zeros(5, dtype=torch.long), "mean")
    with pytest.raises(ValueError, match=r"K >= 2.*\(4, 1\)"):
        fn(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), "mean")
    with pytest.raises(ValueError, match=r"E must have shape \(B, K\), got \(4,\)"):
        fn(torch.zeros(4), torch.zeros(4, dtype=torch.long), "mean")
    with pytest.raises(ValueError, match="target must be a tensor or an array-like"):
        fn(E, "0123", "mean")


def test_target_check_can_be_skipped():
    E, bad = torch.zeros(2, 3), torch.tensor([0, 3])
    # skipped: torch's own indexing then fails, with its own error type
    with pytest.raises((RuntimeError, IndexError)):
        L.nll_loss(E, bad, check_target=False)
    with pytest.raises(ValueError, match="target must lie"):
        L.nll_loss(E, bad, check_target=True)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: L.hinge_loss(torch.zeros(2), torch.zeros(2), reduction="avg"), "reduction"),
        (lambda: L.nll_loss(*candidates(), reduction="batchmean"), "reduction"),
        (lambda: L.hinge_loss(torch.zeros(2), torch.zeros(2), margin=0.0), "margin"),
        (lambda: L.hinge_loss(torch.zeros(2), torch.zeros(2), margin=-1), "margin"),
        (lambda: L.square_square_loss(torch.zeros(2), torch.zeros(2), margin=0), "margin"),
        (lambda: L.lvq2_loss(torch.zeros(2), torch.zeros(2), cap=0), "cap"),
        (lambda: L.square_exp_loss(torch.zeros(2), torch.zeros(2), beta=0), "beta"),
        (lambda: L.nll_loss(*candidates(), beta=0.0), "beta"),
        (lambda: L.mee_loss(*candidates(), beta=-1.0), "beta"),
        (lambda: L.contrastive_loss(torch.zeros(2), torch.ones(2).bool(), margin=0), "margin"),
        (
            lambda: L.contrastive_loss(torch.zeros(2), torch.ones(3).bool()),
            r"same .*\(3,\).*\(2,\)",
        ),
        (
            lambda: L.contrastive_loss(torch.zeros(2), torch.tensor([1, 2])),
            r"same must hold integer labels in \{0, 1\}.*1 value\(s\) outside, e.g. 2",
        ),
        (
            lambda: L.contrastive_loss(torch.zeros(2), torch.tensor([0.5, 2.0])),
            r"same must hold floating weights in \[0, 1\].*e.g. 2.0",
        ),
        (
            lambda: L.contrastive_loss(torch.zeros(2), torch.tensor([0.5, float("nan")])),
            r"same must hold floating weights in \[0, 1\].*e.g. nan",
        ),
        (
            lambda: L.contrastive_loss(torch.zeros(2), torch.ones(2, dtype=torch.complex64)),
            "same must be bool, 0/1 or weights",
        ),
        (lambda: L.energy_loss("12"), "p must be a tensor or an array-like"),
        (
            lambda: L.log_loss(torch.zeros(2, dtype=torch.complex64), torch.zeros(2)),
            "p must hold real",
        ),
        (
            lambda: L.contrastive_divergence_loss(torch.zeros(2, 2), torch.zeros(2)),
            r"e_data.*\(2, 2\)",
        ),
        (lambda: L.contrastive_divergence_loss(torch.zeros(2), torch.zeros(0)), r"e_model.*\(0,\)"),
        (lambda: L.contrastive_divergence_loss(torch.zeros(2), torch.zeros(2), alpha=-1), "alpha"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- noise-contrastive estimation -------------------------------------------------------------


def test_nce_loss_is_the_logistic_loss_with_log_nu():
    g = torch.Generator().manual_seed(0)
    e_d, lq_d = torch.randn(4, generator=g), torch.randn(4, generator=g)
    e_n, lq_n = torch.randn(12, generator=g), torch.randn(12, generator=g)
    nu = 3.0  # 12 noise samples per 4 data points
    h_d = torch.sigmoid(-e_d - lq_d - math.log(nu))  # P(data | x) (Gutmann & Hyvärinen 2010)
    h_n = torch.sigmoid(-e_n - lq_n - math.log(nu))
    per_sample = torch.cat([-h_d.log(), -(1 - h_n).log()])
    torch.testing.assert_close(L.nce_loss(e_d, e_n, lq_d, lq_n, reduction="none"), per_sample)
    torch.testing.assert_close(L.nce_loss(e_d, e_n, lq_d, lq_n, reduction="sum"), per_sample.sum())
    torch.testing.assert_close(L.nce_loss(e_d, e_n, lq_d, lq_n), per_sample.mean())
    torch.testing.assert_close(L.NCELoss(reduction="sum")(e_d, e_n, lq_d, lq_n), per_sample.sum())
    # huge log-odds stay finite (softplus, not log σ)
    big = torch.tensor([1e4])
    assert torch.isfinite(L.nce_loss(-big, big, torch.zeros(1), torch.zeros(1)))


def test_nce_recovers_a_gaussian_mean_covariance_and_log_z():
    # E(x) = ½(x − μ)ᵀ P (x − μ) + c with P = L Lᵀ and a learnable c: NCE against a broad Gaussian
    # noise must find μ, Σ = P⁻¹ and c = log Z = (d/2) log 2π + ½ log det Σ (self-normalised)
    g = torch.Generator().manual_seed(1)
    d, n, nu = 2, 4000, 4
    true_mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    true_cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    data = (
        true_mean
        + torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(true_cov).T
    )
    noise_dist = torch.distributions.MultivariateNormal(
        data.mean(0), covariance_matrix=2.0 * torch.cov(data.T)
    )
    noise = noise_dist.mean + torch.randn(nu * n, d, generator=g, dtype=torch.float64) @ (
        noise_dist.scale_tril.T
    )
    lq_data, lq_noise = noise_dist.log_prob(data), noise_dist.log_prob(noise)
    mu = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    raw = torch.zeros(d, d, dtype=torch.float64, requires_grad=True)  # L: tril, log-diagonal
    c = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def chol():
        return torch.tril(raw, -1) + torch.diag(raw.diagonal().exp())

    def energy(x):
        z = (x - mu) @ chol()
        return 0.5 * z.pow(2).sum(1) + c

    opt = torch.optim.LBFGS([mu, raw, c], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = L.nce_loss(energy(data), energy(noise), lq_data, lq_noise)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        cov = torch.linalg.inv(chol() @ chol().T)
        log_z_of_fit = 0.5 * d * math.log(2 * math.pi) + 0.5 * torch.logdet(cov)
        true_log_z = 0.5 * d * math.log(2 * math.pi) + 0.5 * torch.logdet(true_cov)
    # sampling error of 4000 points: about 0.02 in the mean, 0.03 in the covariance
    assert (mu.detach() - true_mean).abs().max() < 0.08
    assert (cov - true_cov).abs().max() < 0.1
    assert abs(float(c.detach()) - float(log_z_of_fit)) < 0.03  # the model normalises itself
    assert abs(float(c.detach()) - float(true_log_z)) < 0.08
    # the MLE (sample moments) is the efficient answer: NCE with ν = 4 lands near it
    assert (mu.detach() - data.mean(0)).abs().max() < 0.03


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(e_data=torch.zeros(2, 1)), "e_data"),
        (dict(e_noise=torch.zeros(0)), "e_noise"),
        (dict(log_q_data=torch.zeros(3)), "log_q_data"),
        (dict(log_q_noise=torch.zeros(2)), "log_q_noise"),
        (dict(reduction="avg"), "reduction"),
    ],
)
def test_nce_bad_inputs_name_the_argument(kwargs, name):
    args = (
        dict(
            e_data=torch.zeros(2),
            e_noise=torch.zeros(4),
            log_q_data=torch.zeros(2),
            log_q_noise=torch.zeros(4),
        )
        | kwargs
    )
    with pytest.raises(ValueError, match=name):
        L.nce_loss(**args)
