"""Figure helpers shared by every recipe: energy landscapes, sample grids, uncertainty bands.

Functions draw onto a Matplotlib ``Axes`` the caller owns and return what they drew, so recipes
compose panels freely. Importing this module does not pick a Matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def grid_points(
    xlim: tuple[float, float], ylim: tuple[float, float], n: int = 200
) -> tuple[Tensor, Tensor, Tensor]:
    """A regular n×n grid over the box. Returns (points (n², 2), X (n, n), Y (n, n))."""
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
    """
    points, X, Y = grid_points(xlim, ylim, n)
    if device is None:
        params = getattr(energy, "parameters", None)
        first = next(params(), None) if callable(params) else None
        device = first.device if first is not None else "cpu"
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
    cmap: str = "viridis",
    levels: int = 0,
    colorbar: bool = True,
    title: str | None = None,
):
    """Heat map of a 2-D energy (low = dark), optional contours and the data overlaid.

    ``log=True`` shows log(E − min E + 1e-6), which reveals structure across decades.
    Returns the image artist.
    """
    E, X, Y = evaluate_on_grid(energy, xlim, ylim, n)
    shown = (E - E.min() + 1e-6).log() if log else E
    image = ax.imshow(
        shown.numpy(), origin="lower", extent=(*xlim, *ylim), cmap=cmap, aspect="auto"
    )
    if levels:
        ax.contour(X.numpy(), Y.numpy(), shown.numpy(), levels=levels, colors="w", linewidths=0.5)
    if data is not None:
        d = data.detach().float().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=3, c="r", alpha=0.6, linewidths=0)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    return image


def image_grid(
    ax, images: Tensor, nrow: int, pad: int = 1, cmap: str = "gray", title: str | None = None
):
    """Tile images (N, H, W) or (N, 1, H, W) with values in [0, 1] into a grid with ``nrow`` columns."""
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
):
    """Mean line with a ±k·std band. x, mean, std: (N,) (sorted by x for a clean band)."""
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

    predict: maps points (B, 2) -> integer labels (B,), e.g. ``ClassEnergy.predict`` (the argmin
    of the energies). data: (N, 2), labels: (N,). Returns the image artist.
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
    dark, on the colour range [vmin, vmax] (clipped values get the end colours, and the colourbar
    shows an arrow at each clipped end); −inf and +inf (e.g. the log of an energy that is exactly
    0) get the end colours too, NaN stays blank. label: the colourbar's title (what is shown, and
    units). Returns the image artist, for a colourbar shared by several panels.
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
