"""Figure helpers shared by every recipe, and the one figure style.

Functions draw onto a Matplotlib ``Axes`` the caller owns and return what they drew, so recipes
compose panels freely. Importing this module does not pick a Matplotlib backend and changes no
global state: a recipe calls ``use_style()`` once.

The style (STYLE.md, "Figures"): labelled axes and titled colourbars; low energy = dark
everywhere (``ENERGY_CMAP``), and a density is drawn as its energy −log p or with a colour map
that is dark where it is high (``DENSITY_CMAP``), so dark always means likely; panels that are
compared share one scale (pass ``vmin``/``vmax``, ``sharex``/``sharey``); figures at most about
10 inches wide with fonts of 10 pt or more, so they stay legible at README width (650-700 px):
split crowded figures rather than shrink them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ebm._checks import check_int, check_real

__all__ = [
    "ENERGY_CMAP",
    "DENSITY_CMAP",
    "STYLE",
    "use_style",
    "add_colorbar",
    "grid_points",
    "evaluate_on_grid",
    "energy_landscape",
    "energy_image",
    "image_grid",
    "uncertainty_band",
    "decision_regions",
    "mode_coverage_scatter",
    "histogram_energy",
    "robust_range",
    "colorbar_extend",
    "reliability_diagram",
    "coverage_curve",
]


def __dir__() -> list[str]:
    """The public names only: ``dir(ebm.plot)`` hides the modules it imports (torch, nn)."""
    return sorted(__all__)


# low energy = dark: a perceptually uniform map whose low end is dark
ENERGY_CMAP = "viridis"
# a density (high = likely) drawn dark where it is high, the same convention as an energy
DENSITY_CMAP = "magma_r"
# rcParams of every recipe figure: legible when a 10-inch figure is shown 650-700 px wide
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 12,
    "image.cmap": ENERGY_CMAP,
    "savefig.bbox": "tight",
}


def use_style() -> None:
    """Apply ``STYLE`` to Matplotlib's rcParams (call once at the top of a recipe)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def add_colorbar(ax, mappable, label: str, **kwargs):
    """A titled colourbar (``label``) just right of ``ax`` and exactly as tall as it, also for
    equal-aspect panels: no colourbar goes untitled.

    ax: the Matplotlib Axes it belongs to; mappable: what it shows (an image or a scatter's
    artist); label: a non-empty title (what the colours show, and units). kwargs go to
    ``Figure.colorbar``. Returns the colourbar.
    """
    if not label:
        raise ValueError("label must name what the colours show, e.g. 'energy E(y)'")
    cax = ax.inset_axes([1.03, 0.0, 0.045, 1.0])
    bar = ax.figure.colorbar(mappable, cax=cax, **kwargs)
    bar.set_label(label)
    return bar


def _check_limits(name: str, value: object) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (first, last) of finite numbers, got {value!r}")
    first, last = (float(check_real(f"{name}[{i}]", v)) for i, v in enumerate(value))
    if first == last:
        raise ValueError(f"{name} must span a non-empty interval, got {value!r}")
    return first, last


def grid_points(
    xlim: tuple[float, float], ylim: tuple[float, float], n: int = 200
) -> tuple[Tensor, Tensor, Tensor]:
    """A regular n×n grid over the box. Returns (points (n², 2), X (n, n), Y (n, n)).

    xlim, ylim: (first, last) finite coordinates (either order); n: an int >= 2.

    >>> points, X, Y = grid_points((-1, 1), (0, 2), n=3)
    >>> points.shape, X.shape
    (torch.Size([9, 2]), torch.Size([3, 3]))
    >>> points[:3]  # the first row of the grid: y₂ = 0, y₁ from −1 to 1
    tensor([[-1.,  0.],
            [ 0.,  0.],
            [ 1.,  0.]])
    """
    xlim, ylim = _check_limits("xlim", xlim), _check_limits("ylim", ylim)
    n = check_int("n", n, minimum=2)
    xs = torch.linspace(xlim[0], xlim[1], n)
    ys = torch.linspace(ylim[0], ylim[1], n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack([X.flatten(), Y.flatten()], dim=1), X, Y


@torch.no_grad()
def evaluate_on_grid(
    energy: Callable[[Tensor], Tensor],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    n: int = 200,
    device: torch.device | str | None = None,
    chunk: int = 65536,
) -> tuple[Tensor, Tensor, Tensor]:
    """Energies on an n×n grid, computed in chunks. Returns (E (n, n), X, Y) on the CPU.

    energy: any callable mapping (B, 2) -> (B,), e.g. an ``Energy`` or a model's ``.energy``.
    xlim, ylim, n: the box and the grid's resolution, as for ``grid_points``.
    device: where to evaluate (None: the device of the module's parameters, for a module or a
    module's bound method such as ``model.energy``; else the CPU). chunk: points per call.
    """
    if not callable(energy):
        raise ValueError(f"energy must be a callable (B, 2) -> (B,), got {type(energy).__name__}")
    points, X, Y = grid_points(xlim, ylim, n)
    chunk = check_int("chunk", chunk, minimum=1)
    if device is None:
        owner = energy if isinstance(energy, nn.Module) else getattr(energy, "__self__", None)
        first = next(owner.parameters(), None) if isinstance(owner, nn.Module) else None
        device = first.device if first is not None else "cpu"
    else:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must name a torch device, got {device!r}") from err
    values = [energy(p.to(device)).float().cpu() for p in points.split(chunk)]
    return torch.cat(values).reshape(n, n), X, Y


def energy_landscape(
    ax,
    energy: Callable[[Tensor], Tensor],
    xlim: tuple[float, float] = (-3, 3),
    ylim: tuple[float, float] = (-3, 3),
    n: int = 200,
    data: Tensor | None = None,
    log: bool = False,
    cmap: str = ENERGY_CMAP,
    levels: int = 0,
    colorbar: bool = True,
    title: str | None = None,
    label: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str | None = "y₁",
    ylabel: str | None = "y₂",
):
    """Heat map of a 2-D energy (low = dark), optional contours and the data overlaid.

    ax: the Matplotlib Axes to draw on. energy: a callable (B, 2) -> (B,), low = likely,
    evaluated on an n×n grid over the box xlim × ylim (see ``evaluate_on_grid``).
    data: optional (N, 2) points drawn on top in red. cmap: the colour map (default
    ``ENERGY_CMAP``, dark = low). levels: the number of white contour lines (0: none).
    colorbar: draw a titled colourbar. title: the panel's title (None: none).
    ``log=True`` shows log(E − min E + 1e-6), which reveals structure across decades.
    label: the colourbar's title (default "energy E(y)", or the log transform's formula).
    vmin, vmax: the colour scale (pass the same to panels that are compared); values beyond are
    drawn in the end colours and the colourbar shows an arrow. xlabel, ylabel: None leaves them.
    Returns the image artist.
    """
    E, X, Y = evaluate_on_grid(energy, xlim, ylim, n)
    shown = (E - E.min() + 1e-6).log() if log else E
    image = ax.imshow(
        shown.numpy(),
        origin="lower",
        extent=(*xlim, *ylim),
        cmap=cmap,
        aspect="auto",
        vmin=vmin,
        vmax=vmax,
    )
    if levels:
        ax.contour(X.numpy(), Y.numpy(), shown.numpy(), levels=levels, colors="w", linewidths=0.5)
    if data is not None:
        d = data.detach().float().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=3, c="r", alpha=0.6, linewidths=0)
    if colorbar:
        low = vmin is not None and bool((shown < vmin).any())
        high = vmax is not None and bool((shown > vmax).any())
        extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
            (low, high), "both"
        )
        default = "log(E − min E)" if log else "energy E(y)"
        add_colorbar(ax, image, label or default, extend=extend)
    if title:
        ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return image


def image_grid(
    ax, images: Tensor, nrow: int, pad: int = 1, cmap: str = "gray", title: str | None = None
):
    """Tile images (N, H, W) or (N, 1, H, W) with values in [0, 1] into a grid with ``nrow`` columns.

    ax: the Matplotlib Axes to draw on (its axes are hidden). pad: white pixels between and
    around the tiles. cmap: the colour map (grey: 0 black, 1 white). title: the panel's title
    (None: none). Returns the canvas (rows·(H + pad) + pad, nrow·(W + pad) + pad) as a tensor.
    """
    imgs = images.detach().float().cpu()
    if imgs.ndim == 4:
        if imgs.shape[1] != 1:
            raise ValueError(f"images must be greyscale (N, 1, H, W), got {tuple(imgs.shape)}")
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise ValueError(
            f"images must have shape (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}"
        )
    n, h, w = imgs.shape
    ncol = nrow
    rows = -(-n // ncol)
    canvas = torch.ones(rows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = imgs[i]
    ax.imshow(canvas.clamp(0, 1).numpy(), cmap=cmap, vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return canvas


def uncertainty_band(
    ax,
    x: Tensor,
    mean: Tensor,
    std: Tensor,
    k: float = 2.0,
    label: str | None = None,
    color: str = "C0",
    band_label: str | None = None,
):
    """Mean line with a ±k·std band. x, mean, std: (N,) (sorted by x for a clean band).

    ax: the Matplotlib Axes to draw on. k: the band's half-width in stds. color: one Matplotlib
    colour for the line and its band. label: the mean line's legend entry; band_label: the band's (e.g. "mean ± 2σ"), so the band
    is in the legend too. Returns the line.
    """
    x, mean, std = (t.detach().float().cpu().flatten() for t in (x, mean, std))
    order = x.argsort()
    x, mean, std = x[order], mean[order], std[order]
    ax.fill_between(
        x.numpy(),
        (mean - k * std).numpy(),
        (mean + k * std).numpy(),
        color=color,
        alpha=0.25,
        linewidth=0,
        label=band_label,
    )
    (line,) = ax.plot(x.numpy(), mean.numpy(), color=color, label=label)
    return line


def decision_regions(
    ax,
    predict: Callable[[Tensor], Tensor],
    xlim: tuple[float, float] = (-3, 3),
    ylim: tuple[float, float] = (-3, 3),
    n: int = 200,
    data: Tensor | None = None,
    labels: Tensor | None = None,
    n_classes: int | None = None,
    device: torch.device | str | None = None,
    title: str | None = None,
):
    """Colour each point of the box by its predicted class, with labelled data on top.

    ax: the Matplotlib Axes to draw on. predict: maps points (B, 2) -> integer labels (B,),
    e.g. ``ClassEnergy.predict`` (the argmin of the energies), evaluated on an n×n grid over
    the box xlim × ylim (see ``evaluate_on_grid``; device: where, None the predictor's own).
    data: (N, 2), labels: (N,) drawn on top. n_classes: the number of colours (None: the
    largest label seen + 1). title: the panel's title (None: none). Returns the image artist.
    """
    from matplotlib.colors import ListedColormap

    pred, _, _ = evaluate_on_grid(lambda p: predict(p).float(), xlim, ylim, n, device=device)
    if n_classes is None:
        top = int(pred.max()) if labels is None else max(int(pred.max()), int(labels.max()))
        n_classes = top + 1
    cmap = ListedColormap([f"C{k % 10}" for k in range(n_classes)])
    image = ax.imshow(
        pred.numpy(),
        origin="lower",
        extent=(*xlim, *ylim),
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        alpha=0.35,
        aspect="auto",
        interpolation="nearest",
    )
    if data is not None:
        d = data.detach().float().cpu()
        c = None if labels is None else labels.detach().cpu().numpy()
        ax.scatter(
            d[:, 0], d[:, 1], s=3, c=c, cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5, linewidths=0
        )
    if title:
        ax.set_title(title)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return image


def robust_range(*values: Tensor, lower: float = 0.0, upper: float = 0.99) -> tuple[float, float]:
    """One colour range for several panels: the ``lower`` and ``upper`` quantiles of all their
    finite values pooled, so that one spike (a narrow well, a far corner) cannot flatten the rest.

    values: tensors of any shape. Returns (vmin, vmax) as floats; label the colourbar as clipped.
    """
    from ebm._checks import check_real

    check_real("lower", lower, 0.0, 1.0)
    check_real("upper", upper, lower, 1.0, low_inclusive=False)
    pooled = torch.cat([v.detach().float().cpu().flatten() for v in values])
    pooled = pooled[pooled.isfinite()]
    if pooled.numel() == 0:
        raise ValueError("values hold no finite number to take a colour range from")
    if pooled.numel() > 1_000_000:  # torch.quantile's input limit; a strided subsample suffices
        pooled = pooled[:: -(-pooled.numel() // 1_000_000)]
    q = torch.tensor([lower, upper])
    vmin, vmax = pooled.quantile(q).tolist()
    return vmin, vmax if vmax > vmin else vmin + 1.0


def energy_image(
    ax,
    E: Tensor,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    vmin: float | None = None,
    vmax: float | None = None,
    label: str | None = None,
    colorbar: bool = True,
    cmap: str = "viridis",
):
    """Heat map of a precomputed energy grid E (n, n) (rows = y₂, as ``evaluate_on_grid``), low =
    dark, over the box xlim × ylim on ``ax`` (a Matplotlib Axes), on the colour range [vmin, vmax] (clipped values get the end colours, and the colourbar
    shows an arrow at each clipped end); −inf and +inf (e.g. the log of an energy that is exactly
    0) get the end colours too, NaN stays blank. colorbar: draw a colourbar; label: its title
    (what is shown, and units). cmap: the colour map (dark = low). Returns the image artist,
    for a colourbar shared by several panels.
    """
    original = shown = E.detach().float().cpu()
    if vmin is not None:
        shown = shown.masked_fill(shown == -float("inf"), vmin)
    if vmax is not None:
        shown = shown.masked_fill(shown == float("inf"), vmax)
    image = ax.imshow(
        shown.numpy(),
        origin="lower",
        extent=(*xlim, *ylim),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        aspect="auto",
    )
    if colorbar:
        lo = -float("inf") if vmin is None else vmin
        hi = float("inf") if vmax is None else vmax
        cbar = ax.figure.colorbar(
            image, ax=ax, fraction=0.046, pad=0.04, extend=colorbar_extend(original, lo, hi)
        )
        if label:
            cbar.set_label(label)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return image


def colorbar_extend(values: Tensor, vmin: float, vmax: float) -> str:
    """Matplotlib's ``extend`` for a colourbar of ``values`` shown on [vmin, vmax]: which ends clip
    (±inf count as clipped, NaN is ignored)."""
    v = values.detach().float().cpu()
    v = v[~v.isnan()]
    low, high = bool((v < vmin).any()), bool((v > vmax).any())
    return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (low, high), "both"
    )


def mode_coverage_scatter(
    ax,
    samples: Tensor,
    centers: Tensor,
    covered: Tensor | None = None,
    lim: float | None = None,
    title: str | None = None,
    color: str = "C0",
):
    """Samples over hollow circles at the mode centres, so that coverage is visible.

    samples: (N, 2); centers: (K, 2); covered: (K,) bools (e.g. ``mode_counts(...) >= 3``), drawn
    as green circles (covered) and red ones (missed); None draws every circle grey. The circles
    lie beneath the samples and are hollow: the samples inside them stay in view.
    lim: the box [−lim, lim]² (equal aspect). ax: the Matplotlib Axes to draw on; color: the
    samples' colour; title: the panel's title (None: none). Returns the samples' scatter artist.
    """
    c = centers.detach().float().cpu()
    hit = (
        torch.ones(len(c), dtype=torch.bool)
        if covered is None
        else torch.as_tensor(covered).bool().cpu()
    )
    rings = (
        [("0.5", hit, "mode")]
        if covered is None
        else [
            ("C2", hit, "mode covered"),
            ("C3", ~hit, "mode missed"),
        ]
    )
    for edge, mask, label in rings:
        if mask.any():
            ax.scatter(
                c[mask, 0],
                c[mask, 1],
                s=70,
                facecolors="none",
                edgecolors=edge,
                linewidths=1.3,
                zorder=1,
                label=label,
            )
    s = samples.detach().float().cpu()
    points = ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.5, c=color, linewidths=0, zorder=2)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return points


def histogram_energy(
    ax,
    x: Tensor,
    bins: int = 100,
    limits: tuple[float, float] = (-4.0, 4.0),
    min_count: int = 5,
    **line_kwargs,
):
    """Draw the energy −log p(x) of 1-D samples, estimated by a histogram (low = likely).

    Energies of different sample sets drawn this way share one scale (nats), so their depths
    compare honestly: a mode with 70 % of the mass lies ln(0.7/0.3) ≈ 0.85 nats below one with
    30 %. x: (N,) or (N, 1) samples; p is the histogram density count / (N · bin width) over
    ``limits``; bins with fewer than ``min_count`` samples are left out (the curve breaks there)
    rather than drawn from a count too small to estimate. line_kwargs go to ``ax.plot``.
    Returns the line.
    """
    values = x.detach().float().cpu().flatten()
    low, high = limits
    counts = torch.histc(values, bins=bins, min=low, max=high)
    width = (high - low) / bins
    centres = low + width * (torch.arange(bins) + 0.5)
    energy = -(counts / (len(values) * width)).log()
    energy[counts < min_count] = float("nan")
    (line,) = ax.plot(centres.numpy(), energy.numpy(), **line_kwargs)
    return line


def reliability_diagram(
    ax,
    probs: Tensor,
    labels: Tensor,
    n_bins: int = 15,
    adaptive: bool = False,
    title: str | None = None,
    color: str = "C0",
):
    """Accuracy against confidence (the top-class probability) per bin: a calibrated classifier's
    bars reach the diagonal; bars below it are overconfident.

    ax: the Matplotlib Axes to draw on. probs: (N, C) class probabilities (rows in [0, 1]
    summing to 1); labels: (N,) integer class indices in [0, C). n_bins: an int >= 1.
    adaptive: False bins equal widths of confidence (as ``expected_calibration_error``; empty
    bins draw nothing), True bins equal counts (as ``adaptive_ece``; each bar spans its points'
    confidences). The gap to the diagonal is drawn hatched, and the legend gives the ECE.
    title: the panel's title (None: none). color: the bars' colour.
    Returns a dict of (n_bins,) tensors: "confidence" (mean per bin), "accuracy", "count"
    (NaN for an empty bin's means), and "ece" (0-dim).
    """
    from ebm.metrics.calibration import adaptive_ece
    from ebm.metrics.uncertainty import _check_classification, expected_calibration_error

    n_bins = check_int("n_bins", n_bins, minimum=1)
    probs, labels = _check_classification(probs, labels)
    metric = adaptive_ece if adaptive else expected_calibration_error
    ece = metric(probs.detach(), labels, n_bins).double().cpu()
    confidence, predicted = probs.detach().cpu().max(1)  # binned in the metric's dtype
    correct = (predicted == labels.cpu()).double()
    n = len(confidence)
    if adaptive:
        order = confidence.argsort(stable=True)
        small, extra = divmod(n, n_bins)
        sizes = torch.full((n_bins,), small, dtype=torch.long)
        sizes[:extra] += 1
        bins = torch.empty(n, dtype=torch.long)
        bins[order] = torch.repeat_interleave(torch.arange(n_bins), sizes)
    else:
        bins = (confidence * n_bins).ceil().long().clamp(1, n_bins) - 1
    confidence = confidence.double()
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, torch.ones(n).double())
    mean_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, confidence) / count
    accuracy = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct) / count
    full = count > 0
    if adaptive:  # each bar spans its points' confidences
        low = torch.full((n_bins,), float("nan"), dtype=torch.float64)
        high = low.clone()
        low = low.scatter_reduce(0, bins, confidence, "amin", include_self=False)
        high = high.scatter_reduce(0, bins, confidence, "amax", include_self=False)
        width = (high - low).clamp_min(0.01)
        left = low
    else:
        left = torch.arange(n_bins, dtype=torch.float64) / n_bins
        width = torch.full((n_bins,), 1.0 / n_bins, dtype=torch.float64)
    if not any(line.get_gid() == "ebm-diagonal" for line in ax.lines):
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration", gid="ebm-diagonal")
    ax.bar(
        left[full].numpy(),
        accuracy[full].numpy(),
        width=width[full].numpy(),
        align="edge",
        color=color,
        edgecolor="white",
        linewidth=0.5,
        alpha=0.85,
        label="accuracy",
    )
    ax.bar(
        left[full].numpy(),
        (mean_conf - accuracy)[full].numpy(),
        bottom=accuracy[full].numpy(),
        width=width[full].numpy(),
        align="edge",
        facecolor="none",
        edgecolor="C3",
        hatch="//",
        linewidth=0.8,
        label="gap to the mean confidence",
    )
    ax.text(
        0.97,
        0.04,
        f"{'adaptive ' if adaptive else ''}ECE = {float(ece):.3f}",
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        bbox={"facecolor": "white", "alpha": 0.85, "linewidth": 0},
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return {"confidence": mean_conf, "accuracy": accuracy, "count": count, "ece": ece}


def coverage_curve(
    ax,
    alphas: Tensor,
    coverage: Tensor,
    n_calibration: int | None = None,
    label: str | None = None,
    title: str | None = None,
    color: str = "C0",
):
    """Observed coverage of prediction intervals or sets against the nominal level 1 − α.

    ax: the Matplotlib Axes to draw on. alphas: (L,) miscoverage levels in (0, 1); coverage:
    (L,) the observed coverage at each, in [0, 1] (tensors or array-likes, finite).
    n_calibration: the number n of calibration points: the band [1 − α, 1 − α + 1/(n + 1)],
    where split conformal coverage lies on average, is shaded (None: only the diagonal).
    label: the curve's legend entry; title: the panel's title (None: none); color: the curve's.
    Returns the line.
    """
    from ebm._checks import as_float_tensor, check_same_shape

    alphas = as_float_tensor("alphas", alphas, ndim=1)
    coverage = as_float_tensor("coverage", coverage, ndim=1)
    check_same_shape(alphas=alphas, coverage=coverage)
    if len(alphas) == 0:
        raise ValueError("alphas must hold at least one level, got an empty array")
    if not bool(((alphas > 0) & (alphas < 1)).all()):
        raise ValueError(f"alphas must lie in (0, 1), got {alphas.tolist()}")
    if not bool(((coverage >= 0) & (coverage <= 1)).all()):
        raise ValueError(f"coverage must lie in [0, 1], got {coverage.tolist()}")
    nominal = (1 - alphas.detach().double().cpu()).sort()
    observed = coverage.detach().double().cpu()[nominal.indices]
    level = nominal.values
    if not any(line.get_gid() == "ebm-diagonal" for line in ax.lines):  # once per Axes
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="nominal 1 − α", gid="ebm-diagonal")
    if n_calibration is not None:
        n = check_int("n_calibration", n_calibration, minimum=1)
        grid = torch.linspace(0, 1, 201, dtype=torch.float64)
        ax.fill_between(
            grid.numpy(),
            grid.numpy(),
            (grid + 1 / (n + 1)).clamp(max=1).numpy(),
            color="0.6",
            alpha=0.35,
            linewidth=0,
            label=f"guarantee, n = {n}",
        )
    (line,) = ax.plot(level.numpy(), observed.numpy(), "o-", color=color, markersize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage 1 − α")
    ax.set_ylabel("observed coverage")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return line
