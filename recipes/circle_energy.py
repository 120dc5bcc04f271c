"""The notes' implicit circle (figs. 16.2/16.3): E(x, y) = (x² + y² − r²)², r = 1, a conditional
energy with two answers. For a given x with |x| < r the answers are y = ±√(r² − x²) (E = 0); for
|x| > r no y lies on the circle and the best answer is y = 0, with energy (x² − r²)².

Inference y* = argmin_y E(x, y), three ways, checked against that closed form on a grid of x:
gradient descent from six starts (each (x, start) pair its own problem, so every branch is kept,
not just the best restart), L-BFGS from the same starts, and exhaustive search over a grid of
4001 values of y (its global argmin, and the grid's local minima, which find both branches).
Figures: E over the plane with its valley (the circle), the conditional minima y*(x) and the
descent paths at x = 0.6; E(x, y) against y for four x; the answers against x; their errors.

    python recipes/circle_energy.py [--quick] [--seed 0] [--out figures]
"""

import matplotlib.pyplot as plt
import torch

from ebm.energies import CircleEnergy
from ebm.inference import exhaustive_search, gradient_descent, lbfgs
from ebm.plot import energy_image, evaluate_on_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, write_results

args = parse_args(__doc__)
use_style()
torch.set_default_dtype(torch.float64)  # closed-form checks at 1e-6, not float32's 1e-4

R = 1.0
circle = CircleEnergy(radius=R)  # E(y₁, y₂) = (y₁² + y₂² − r²)²; here y₁ = x is given
x = torch.linspace(-1.5, 1.5, 31 if args.quick else 121)  # step 0.1 or 0.025; holds 0 and ±1
STARTS = torch.tensor([-1.7, -1.1, -0.3, 0.3, 1.1, 1.7])  # y₀ = 0 is a stationary point: avoided
LR, N_STEPS = 0.02, 1000 if args.quick else 2000
FOLD = 0.1  # |x| within FOLD of r: the two minima merge, E'' → 0 and descent slows down


def closed_form(x):
    """The answers per x: (upper, lower) branches ±√(r² − x²), or (0, 0) beyond the circle; and
    the minimum energy, 0 on the circle's span and (x² − r²)² beyond it."""
    c = R**2 - x.square()
    upper = c.clamp_min(0).sqrt()
    return upper, -upper, (-c).clamp_min(0).square()


def conditional(x_rows):
    """E(x, ·) for matched rows: y (N, 1) -> (N,), x_rows (N,) given."""
    return lambda y: circle(torch.cat([x_rows[:, None], y], 1))


# ---- gradient descent and L-BFGS from every start: one problem per (x, start) --------------------
x_rows = x.repeat_interleave(len(STARTS))  # (Nx·S,), x-major
init = STARTS.repeat(len(x))[None, :, None]  # (R=1, Nx·S, 1)
gd = gradient_descent(conditional(x_rows), init, n_steps=N_STEPS, lr=LR, backprop="none")
bfgs = lbfgs(conditional(x_rows), init, max_iter=200, backprop="none")
upper, lower, e_min = closed_form(x)
target = torch.where(STARTS > 0, 1.0, -1.0).repeat(len(x)) * upper.repeat_interleave(len(STARTS))
inside, outside = x.abs() < R - FOLD, x.abs() > R + FOLD  # (Nx,) away from the fold
at_fold = ~(inside | outside)


def errors(found):
    """|y found − the branch its start's sign selects| per x (max over starts), (Nx,)."""
    return (found.argmin[:, 0] - target).abs().reshape(len(x), len(STARTS)).amax(1)


gd_error, bfgs_error = errors(gd), errors(bfgs)
# answers per x: distinct GD end points (rounded to 10⁻³)
gd_y = gd.argmin[:, 0].reshape(len(x), len(STARTS))
n_answers = torch.tensor([len(torch.unique(torch.round(row, decimals=3))) for row in gd_y])

# ---- exhaustive search over a y grid: the global argmin, and the grid's local minima ------------
y_grid = torch.linspace(-2.0, 2.0, 4001)[:, None]  # step 0.001, symmetric: holds 0
step = 4.0 / 4000


def grid_energy(block):  # (n, 1) candidates -> (Nx, n)
    pairs = torch.stack(torch.broadcast_tensors(x[:, None], block[None, :, 0]), -1)
    return circle(pairs.reshape(-1, 2)).reshape(len(x), len(block))


search = exhaustive_search(grid_energy, y_grid, chunk_size=1024, backprop="none")
search_error = (search.argmin[:, 0].abs() - upper).abs()  # the nearer branch (ties: y < 0)
search_energy_error = (search.energy - e_min).abs()
E_grid = grid_energy(y_grid)  # (Nx, Ny), for the local minima
left, mid, right = E_grid[:, :-2], E_grid[:, 1:-1], E_grid[:, 2:]
is_min = (mid < left) & (mid <= right)  # strict on the left: a flat pair counts once
local_minima = [y_grid[1:-1, 0][row] for row in is_min]
n_local = torch.tensor([len(m) for m in local_minima])
local_error = torch.tensor(
    [
        (m[:, None] - torch.stack([lo, up])[None]).abs().amin(1).max()
        for m, lo, up in zip(local_minima, lower, upper)
    ]
)

# ---- descent paths at x = 0.6 (answers ±0.8), one step at a time, for the figure -----------------
X0 = 0.6
path_x = torch.full((len(STARTS),), X0)
paths = [STARTS[:, None]]
for _ in range(150):
    paths.append(
        gradient_descent(conditional(path_x), paths[-1][None], n_steps=1, lr=LR).argmin.detach()
    )
paths = torch.stack(paths)[:, :, 0]  # (T, S)

# ---- figure --------------------------------------------------------------------------------------
fig, axes = plt.subplots(2, 2, figsize=(11, 9.5), layout="constrained")
box = dict(xlim=(-1.5, 1.5), ylim=(-1.8, 1.8))
ax = axes[0, 0]
F_plane, _, _ = evaluate_on_grid(circle, **box, n=121 if args.quick else 301)
energy_image(ax, F_plane.log10(), **box, vmin=-3, vmax=1, label="log₁₀ E(x, y), clipped at 10⁻³")
x_in, x_out = x[x.abs() <= R], x[x.abs() >= R]
for sign in (1, -1):
    ax.plot(x_in, sign * closed_form(x_in)[0], "r-", lw=1.5)
for part in (x_out[x_out < 0], x_out[x_out > 0]):
    ax.plot(part, torch.zeros_like(part), "r-", lw=1.5)
ax.plot([], [], "r-", label="y*(x) = argmin_y E: the circle (E = 0), 0 beyond")
for s in range(len(STARTS)):
    ax.annotate(
        "",
        xy=(X0, paths[-1, s]),
        xytext=(X0, paths[0, s]),
        arrowprops=dict(arrowstyle="->", color="orange", lw=1.2),
    )
ax.plot([], [], "-", color="orange", label=f"descent at x = {X0} from 6 starts")
ax.set(xlabel="x (given)", ylabel="y (inferred)", title="E(x, y) = (x² + y² − 1)²: the valley")
ax.legend(fontsize=8, loc="lower left")
ax.set_aspect("equal")

ax = axes[0, 1]
y_line = y_grid[:, 0]
for x0, color in zip((0.0, X0, 0.95, 1.2), ("C0", "C1", "C2", "C3")):
    e = circle(torch.stack([torch.full_like(y_line, x0), y_line], 1))
    ax.plot(y_line, e, color=color, lw=1.2, label=f"x = {x0:g}")
    (row,) = torch.nonzero((x - x0).abs() < 1e-9)[:, 0].tolist() or [None]
    if row is not None:
        ax.plot(gd_y[row], circle(torch.stack([x[row].expand(6), gd_y[row]], 1)), "o", color=color)
ax.plot(
    paths[:, 1],
    circle(torch.stack([path_x[:1].expand(len(paths)), paths[:, 1]], 1)),
    "k.",
    ms=3,
    label=f"descent path from y₀ = {STARTS[1]:g} at x = {X0}",
)
ax.set(
    xlabel="y", ylabel="E(x, y)", ylim=(-0.05, 1.5), title="E(x, y) against y; dots: descent ends"
)
ax.legend(fontsize=8)

ax = axes[1, 0]
for s in range(len(STARTS)):
    ax.plot(x, gd_y[:, s], "o", ms=4, mfc="none", color="C0" if STARTS[s] > 0 else "C1")
ax.plot([], [], "o", mfc="none", color="C0", label="descent from y₀ > 0")
ax.plot([], [], "o", mfc="none", color="C1", label="descent from y₀ < 0")
for xi, m in zip(x, local_minima):
    ax.plot(xi.expand(len(m)), m, "k.", ms=3)
ax.plot([], [], "k.", label="exhaustive search: grid local minima")
ax.plot(x, upper, "r-", lw=0.8, label="closed form ±√(1 − x²), 0 for |x| > 1")
ax.plot(x, lower, "r-", lw=0.8)
ax.set(xlabel="x", ylabel="y*", title="the answers: two inside the circle, one outside")
ax.legend(fontsize=8)

ax = axes[1, 1]
floor = 1e-16
ax.semilogy(x, gd_error.clamp_min(floor), "o-", ms=3, label=f"descent ({N_STEPS} steps, lr {LR})")
ax.semilogy(x, bfgs_error.clamp_min(floor), "s-", ms=3, label="L-BFGS")
ax.semilogy(x, search_error.clamp_min(floor), "^-", ms=3, label="exhaustive search (step 10⁻³)")
for edge in (-R - FOLD, -R + FOLD, R - FOLD, R + FOLD):
    ax.axvline(edge, color="grey", lw=0.6, ls=":")
ax.set(
    xlabel="x",
    ylabel="|y* − closed form| (max over starts; 10⁻¹⁶ = exact)",
    title="error: slow only at the fold |x| ≈ 1, where E'' → 0",
)
ax.legend(fontsize=8)
save_figure(fig, args.out, "circle_energy")


# ---- key numbers ---------------------------------------------------------------------------------
def worst(err, where):
    return err[where].max().item()


results = {
    "radius": R,
    "n_x": len(x),
    "starts": STARTS,
    "gd_lr": LR,
    "gd_n_steps": N_STEPS,
    "fold_halfwidth": FOLD,
    "gd_max_error_inside": worst(gd_error, inside),
    "gd_max_error_outside": worst(gd_error, outside),
    "gd_max_error_at_fold": worst(gd_error, at_fold),
    "gd_error_at_x_equals_r": gd_error[(x - R).abs().argmin()].item(),
    # at x = r, E = y⁴ and the gradient flow dy/dt = −4y³ gives y(t) = y₀/√(1 + 8y₀²t), t = lr·steps:
    # descent converges like 1/√t there, not geometrically
    "gd_error_at_x_equals_r_flow_prediction": (
        STARTS.abs() / (1 + 8 * STARTS.square() * LR * N_STEPS).sqrt()
    )
    .max()
    .item(),
    "lbfgs_max_error_inside": worst(bfgs_error, inside),
    "lbfgs_max_error_outside": worst(bfgs_error, outside),
    "lbfgs_max_error_at_fold": worst(bfgs_error, at_fold),
    "gd_branch_is_sign_of_start": bool(((gd.argmin[:, 0] * target) >= 0).all()),
    "gd_answers_inside": sorted(set(n_answers[inside].tolist())),
    "gd_answers_outside": sorted(set(n_answers[outside].tolist())),
    "search_grid_step": step,
    "search_max_error": search_error.max().item(),
    "search_max_error_inside": worst(search_error, inside),
    "search_max_error_outside": worst(search_error, outside),
    "search_max_error_at_fold": worst(search_error, at_fold),
    "search_max_energy_error": search_energy_error.max().item(),
    "search_local_minima_inside": sorted(set(n_local[inside].tolist())),
    "search_local_minima_outside": sorted(set(n_local[outside].tolist())),
    "search_local_minima_max_error_inside": worst(local_error, inside),
    "search_local_minima_max_error_outside": worst(local_error, outside),
}
write_results(args.out, "circle_energy", results)
print_table(
    f"circle: |y* − closed form| (max over x and starts; |x| within {FOLD} of r = the fold)",
    {
        "gradient descent": {
            "inside": results["gd_max_error_inside"],
            "outside": results["gd_max_error_outside"],
            "fold": results["gd_max_error_at_fold"],
        },
        "L-BFGS": {
            "inside": results["lbfgs_max_error_inside"],
            "outside": results["lbfgs_max_error_outside"],
            "fold": results["lbfgs_max_error_at_fold"],
        },
        "exhaustive (global argmin)": {
            "inside": results["search_max_error_inside"],
            "outside": results["search_max_error_outside"],
            "fold": results["search_max_error_at_fold"],
        },
    },
    header="method",
)
print_table(
    "number of answers per x",
    {
        "descent end points, inside": str(results["gd_answers_inside"]),
        "descent end points, outside": str(results["gd_answers_outside"]),
        "grid local minima, inside": str(results["search_local_minima_inside"]),
        "grid local minima, outside": str(results["search_local_minima_outside"]),
    },
)
