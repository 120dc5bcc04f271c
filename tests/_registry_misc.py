"""Bad-input registry, part 3: metrics, data, train, plot, recipe, and the written exemptions."""

from __future__ import annotations

from unittest import mock

import torch
from _bad_values import (
    Choice,
    Data,
    Fn,
    Fw,
    Int,
    Interval,
    Labels,
    Real,
    Skip,
    V,
    det,
    gen,
    net,
    rand,
    randn,
)

import ebm.bayes as bayes
import ebm.data as D
import ebm.metrics as metrics
import ebm.metrics.frechet as frechet
import ebm.plot as plot
import ebm.train as train

POSITIVE = Real(0, None, low_inclusive=False)
NONNEGATIVE = Real(0)
PROBABILITY = Real(0, 1)
OPEN_UNIT = Real(0, 1, False, False)
REDUCTION = Choice()
B = 6


# ---- metrics ----------------------------------------------------------------------------------


def _stub_classifier(dataset: str = "digits", mnist_root=None):
    """A small fixed classifier in place of the cached, trained one (no training, no cache)."""
    return det(frechet.DigitClassifier(8 if dataset == "digits" else 28)).eval()


def _with_stub(fn):
    def call(**kwargs):
        with mock.patch.object(frechet, "digit_classifier", _stub_classifier):
            return fn(**kwargs)

    return call


def _gaussian_triplet() -> dict:
    return dict(y=randn(B, 1), mean=randn(B, 1, seed=1), var=0.5 + rand(B, 1, seed=2))


SAMPLE_SET = Data(trailing=True)  # (N, D): the other set's D
TRIPLET = Data(ndim=False, trailing=True)  # y, mean, var: one shape
METRICS = {
    "ebm.metrics.kernel_stein_discrepancy": V(
        lambda: (
            metrics.kernel_stein_discrepancy,
            dict(samples=randn(8, 2), score=lambda x: -x, chunk_size=3),
        ),
        samples=Data(),
        score=Fn(),
        kernel=Choice(),
        bandwidth=POSITIVE,
        chunk_size=Int(1),
    ),
    "ebm.metrics.ksd_test": V(
        lambda: (
            metrics.ksd_test,
            dict(samples=randn(8, 2), score=lambda x: -x, n_bootstrap=5, generator=gen(1)),
        ),
        samples=Data(),
        score=Fn(),
        kernel=Choice(),
        bandwidth=POSITIVE,
        n_bootstrap=Int(1),
        chunk_size=Int(1),
    ),
    "ebm.metrics.bootstrap_interval": V(
        lambda: (
            metrics.bootstrap_interval,
            dict(
                data=(randn(B), randn(B, seed=1)),
                statistic=lambda a, b: (a - b).mean(),
                n_bootstrap=20,
                generator=gen(1),
            ),
        ),
        data=Skip("a sequence of paired samples, each checked by shape; a statistic decides NaN"),
        statistic=Fn(),
        n_bootstrap=Int(1),
        level=OPEN_UNIT,
    ),
    "ebm.metrics.mmd": V(
        lambda: (metrics.mmd, dict(x=randn(8, 2), y=randn(7, 2, seed=1), bandwidth=1.0)),
        x=SAMPLE_SET,
        y=SAMPLE_SET,
        bandwidth=POSITIVE,
    ),
    "ebm.metrics.energy_distance": V(
        lambda: (metrics.energy_distance, dict(x=randn(8, 2), y=randn(7, 2, seed=1))),
        x=SAMPLE_SET,
        y=SAMPLE_SET,
    ),
    "ebm.metrics.frechet_distance": V(
        lambda: (metrics.frechet_distance, dict(x=randn(8, 2), y=randn(7, 2, seed=1))),
        x=SAMPLE_SET,
        y=SAMPLE_SET,
    ),
    "ebm.metrics.gaussian_frechet_distance": V(
        lambda: (
            metrics.gaussian_frechet_distance,
            dict(
                mu1=randn(2),
                cov1=torch.eye(2),
                mu2=randn(2, seed=1),
                cov2=torch.tensor([[2.0, 0.3], [0.3, 1.0]]),
            ),
        ),
        mu1=Data(trailing=True),
        cov1=Data(trailing=True),
        mu2=Data(trailing=True),
        cov2=Data(trailing=True),
    ),
    "ebm.metrics.mode_coverage": V(
        lambda: (
            metrics.mode_coverage,
            dict(samples=randn(10, 2), centers=randn(3, 2, seed=1), std=0.5),
        ),
        samples=SAMPLE_SET,
        centers=SAMPLE_SET,
        std=POSITIVE,
    ),
    "ebm.metrics.mode_counts": V(
        lambda: (
            metrics.mode_counts,
            dict(samples=randn(10, 2), centers=randn(3, 2, seed=1), std=0.5),
        ),
        samples=SAMPLE_SET,
        centers=SAMPLE_SET,
        std=POSITIVE,
    ),
    "ebm.metrics.checkerboard_occupancy": V(
        lambda: (metrics.checkerboard_occupancy, dict(samples=randn(10, 2) * 3)),
        samples=Data(trailing=True),  # (N, 2): a board is 2-D
        n_cells=Int(1),
        low=Real(),
        high=Real(),
    ),
    "ebm.metrics.mode_weights": V(
        lambda: (
            metrics.mode_weights,
            dict(samples=randn(10, 2), centers=randn(3, 2, seed=1), std=0.5),
        ),
        samples=SAMPLE_SET,
        centers=SAMPLE_SET,
        std=POSITIVE,
        n_std=POSITIVE,
    ),
    "ebm.metrics.nearest_distance": V(
        lambda: (
            metrics.nearest_distance,
            dict(samples=randn(10, 2), reference=randn(7, 2, seed=1)),
        ),
        samples=SAMPLE_SET,
        reference=SAMPLE_SET,
        chunk=Int(1),
    ),
    "ebm.metrics.near_data_fraction": V(
        lambda: (
            metrics.near_data_fraction,
            dict(samples=randn(10, 2), reference=randn(7, 2, seed=1), radius=0.5),
        ),
        samples=SAMPLE_SET,
        reference=SAMPLE_SET,
        radius=POSITIVE,
    ),
    "ebm.metrics.gaussian_nll": V(
        lambda: (metrics.gaussian_nll, _gaussian_triplet()),
        y=TRIPLET,
        mean=TRIPLET,
        var=TRIPLET,
        reduction=REDUCTION,
    ),
    "ebm.metrics.crps_gaussian": V(
        lambda: (metrics.crps_gaussian, _gaussian_triplet()),
        y=TRIPLET,
        mean=TRIPLET,
        var=TRIPLET,
        reduction=REDUCTION,
    ),
    "ebm.metrics.crps_samples": V(
        lambda: (metrics.crps_samples, dict(y=randn(B, 1), samples=randn(5, B, 1, seed=1))),
        y=TRIPLET,
        samples=TRIPLET,
        reduction=REDUCTION,
    ),
    "ebm.metrics.interval_coverage": V(
        lambda: (metrics.interval_coverage, _gaussian_triplet()),
        y=TRIPLET,
        mean=TRIPLET,
        var=TRIPLET,
        level=OPEN_UNIT,
    ),
    "ebm.metrics.calibration_curve": V(
        lambda: (metrics.calibration_curve, dict(**_gaussian_triplet(), levels=4)),
        y=TRIPLET,
        mean=TRIPLET,
        var=TRIPLET,
        levels=Int(1),
    ),
    "ebm.metrics.brier_score": V(
        lambda: (
            metrics.brier_score,
            dict(probs=randn(B, 3).softmax(1), labels=torch.tensor([0, 2, 1, 1, 0, 2])),
        ),
        probs=Data(),
        labels=Labels(3),
    ),
    "ebm.metrics.expected_calibration_error": V(
        lambda: (
            metrics.expected_calibration_error,
            dict(probs=randn(B, 3).softmax(1), labels=torch.tensor([0, 2, 1, 1, 0, 2]), n_bins=4),
        ),
        probs=Data(),
        labels=Labels(3),
    ),
    "ebm.metrics.ood_auroc": V(
        lambda: (metrics.ood_auroc, dict(scores_in=randn(B), scores_out=randn(4, seed=1) + 1))
    ),
    "ebm.metrics.classifier_features": V(
        lambda: (_with_stub(metrics.classifier_features), dict(images=rand(4, 1, 8, 8))),
        images=Data(trailing=True),
        mnist_root=Skip("a folder of IDX files"),
    ),
    "ebm.metrics.frechet_classifier_distance": V(
        lambda: (
            _with_stub(metrics.frechet_classifier_distance),
            dict(fake=rand(4, 1, 8, 8), real=rand(5, 1, 8, 8, seed=1)),
        ),
        fake=Data(trailing=True),
        real=Data(trailing=True),
        mnist_root=Skip("a folder of IDX files"),
    ),
}


# ---- data -------------------------------------------------------------------------------------

N = 10
UNITS = Data(ndim=False, empty=False, promote=False)  # plain arithmetic: numpy in, numpy out
DATA = {
    "ebm.data.ring_of_gaussians": V(
        lambda: (D.ring_of_gaussians, dict(n=N, generator=gen(0))),
        radius=POSITIVE,
        noise=NONNEGATIVE,
    ),
    "ebm.data.grid_of_gaussians": V(
        lambda: (D.grid_of_gaussians, dict(n=N, generator=gen(0))),
        spacing=POSITIVE,
        noise=NONNEGATIVE,
    ),
    "ebm.data.two_moons": V(lambda: (D.two_moons, dict(n=N, generator=gen(0))), noise=NONNEGATIVE),
    "ebm.data.pinwheel": V(
        lambda: (D.pinwheel, dict(n=N, generator=gen(0))),
        radial_std=NONNEGATIVE,
        tangential_std=NONNEGATIVE,
        rate=Real(),
    ),
    "ebm.data.checkerboard": V(lambda: (D.checkerboard, dict(n=N, generator=gen(0)))),
    "ebm.data.parabola": V(
        lambda: (D.parabola, dict(n=N, generator=gen(0))),
        noise=NONNEGATIVE,
        low=Real(),
        high=Real(),
    ),
    "ebm.data.coin_flips": V(
        lambda: (D.coin_flips, dict(n=N, generator=gen(0))), p_heads=PROBABILITY
    ),
    "ebm.data.spiral": V(
        lambda: (D.spiral, dict(n_per_class=4, generator=gen(0))),
        n_classes=Int(2),
        noise=NONNEGATIVE,
    ),
    "ebm.data.ellipse": V(
        lambda: (D.ellipse, dict(n=N, generator=gen(0))),
        x=Real(),
        alpha=Real(),
        beta=Real(),
        noise=NONNEGATIVE,
    ),
    "ebm.data.horn": V(
        lambda: (D.horn, dict(n=N, generator=gen(0))), alpha=Real(), beta=Real(), noise=NONNEGATIVE
    ),
    "ebm.data.x_sin_x": V(
        lambda: (D.x_sin_x, dict(n=N, generator=gen(0))), low=Real(), high=Real(), noise=NONNEGATIVE
    ),
    "ebm.data.digits": V(
        lambda: (D.digits, dict(split="test")), split=Choice(), test_fraction=OPEN_UNIT
    ),
    "ebm.data.mauna_loa_co2": V(
        lambda: (D.mauna_loa_co2, dict(split_year=1990.0)),
        split_year=Real(1958.2083, 2001.9583, False, False),  # inside the record
    ),
    "ebm.data.rotate_images": V(
        lambda: (
            D.rotate_images,
            dict(images=rand(3, 1, 8, 8), angles=torch.tensor([0.0, 30.0, 90.0])),
        ),
        images=Data(),
        angles=Data(trailing=True),
    ),
    "ebm.data.rotated_digit": V(
        lambda: (D.rotated_digit, dict(index=3, angles=torch.tensor([0.0, 45.0]))),
        index=Int(0, 358),  # the test split of digits() holds 359 images
        angles=Data(),
        split=Choice(),
    ),
    "ebm.data.CO2Split.years": Fw(lambda: (D.mauna_loa_co2().years, dict(x=randn(B, 1))), x=UNITS),
    "ebm.data.CO2Split.ppmv": Fw(lambda: (D.mauna_loa_co2().ppmv, dict(y=randn(B, 1))), y=UNITS),
}


# ---- train ------------------------------------------------------------------------------------


def _trained(**hyper) -> train.Trainer:
    """Construct, then fit a tiny model: the Trainer may check what it uses at fit, before any
    step (the device, the batch size, EMA)."""
    model = bayes.Supervised(net(1, 1))
    return train.Trainer(**hyper).fit(model, (randn(8, 1), randn(8, 1, seed=1)))


_QUIET = dict(progress=False, tensorboard=False, log_every_n_steps=None, device="cpu")
TRAIN = {
    "ebm.train.Trainer": V(
        lambda: (_trained, dict(max_epochs=1, **_QUIET)),
        max_epochs=Int(1),
        device=Choice(),
        precision=Choice(),
        ckpt_dir=Skip("a folder"),
        nan_policy=Choice(),
        grad_clip=POSITIVE,
        progress=Choice(),
        overwrite=Choice(),
        compile=Choice(),
        ema_decay=OPEN_UNIT,
        scheduler_interval=Choice(),
        log_dir=Skip("a folder"),
        tensorboard=Choice(),
        callbacks=Skip("Callback instances (test_train_extras.py)"),
        num_workers=Int(0),
    ),
    "ebm.train.EMA": V(lambda: (train.EMA, dict(model=net(2, 2), decay=0.9)), decay=OPEN_UNIT),
    "ebm.train.EMA.update": V(
        lambda: (train.EMA(net(2, 2), 0.9).update, dict(model=net(2, 2, seed=1)))
    ),
    "ebm.train.EMA.copy_to": V(
        lambda: (train.EMA(net(2, 2), 0.9).copy_to, dict(model=net(2, 2, seed=1)))
    ),
    "ebm.train.EMA.swap": V(
        lambda: (train.EMA(net(2, 2), 0.9).swap, dict(model=net(2, 2, seed=1)))
    ),
    "ebm.train.callbacks.EarlyStopping": V(
        lambda: (train.EarlyStopping, dict(patience=2)),
        monitor=Skip("a metric name, looked up when the epoch ends"),
        patience=Int(0),
        min_delta=NONNEGATIVE,
        mode=Choice(),
    ),
    "ebm.train.callbacks.RestartOnDivergence": V(
        lambda: (train.RestartOnDivergence, dict(threshold=1e4)),
        threshold=POSITIVE,
        monitor=Skip("term names, looked up in each step's outputs (test_train_restart.py)"),
        lr_factor=Real(0, 1, low_inclusive=False),
        max_restarts=Int(0),
    ),
    "ebm.train.resolve_device": V(
        lambda: (train.resolve_device, dict(device="cpu")), device=Choice()
    ),
}


# ---- plot -------------------------------------------------------------------------------------


def _bowl(p: torch.Tensor) -> torch.Tensor:
    return p.pow(2).sum(1)


LIMITS = Interval()  # any order: a reversed range draws a flipped axis
PLOT = {
    "ebm.plot.robust_range": V(  # values: *args, NaN/inf skipped by design (only finite pooled)
        lambda: (
            lambda **kw: plot.robust_range(randn(4, 4), randn(3, seed=1), **kw),
            dict(lower=0.05, upper=0.95),
        ),
        lower=PROBABILITY,
        upper=Real(0, 1, low_inclusive=False),
    ),
    "ebm.plot.grid_points": V(
        lambda: (plot.grid_points, dict(xlim=(-1.0, 1.0), ylim=(-2.0, 2.0), n=4)),
        xlim=LIMITS,
        ylim=LIMITS,
        n=Int(2),
    ),
    "ebm.plot.evaluate_on_grid": V(
        lambda: (
            plot.evaluate_on_grid,
            dict(energy=_bowl, xlim=(-1.0, 1.0), ylim=(-2.0, 2.0), n=4, chunk=5),
        ),
        xlim=LIMITS,
        ylim=LIMITS,
        n=Int(2),
        device=Choice(),
    ),
}

MISC = {**METRICS, **DATA, **TRAIN, **PLOT}


# ---- written exemptions (rules for whole families live in test_bad_inputs.py) ------------------

EXEMPT = {
    "ebm.energies.Energy.forward": "abstract: raises NotImplementedError; every energy's own "
    "forward is walked",
    "ebm.train.Trainer.fit": "has its own fault tests (test_train_faults.py, test_train_crash.py): "
    "a model and data loaders, not values",
    "ebm.train.load_checkpoint": "a file loader: missing, corrupt and unsafe files are "
    "test_train_checkpoint.py's subject",
    "ebm.data.mnist": "a file loader: missing and malformed IDX files are test_data_images.py's "
    "subject",
    "ebm.data.CO2Split": "a frozen record built by mauna_loa_co2 from validated data",
    "ebm.bayes.Prediction.to": "Tensor.to's arguments, passed through to torch",
    **{
        f"ebm.plot.{name}": "draws onto a caller's Matplotlib Axes: Matplotlib checks what it is "
        "given (limits, colours); the computing part is walked in grid_points/evaluate_on_grid"
        for name in (
            "energy_landscape",
            "image_grid",
            "uncertainty_band",
            "decision_regions",
            "energy_image",
            "add_colorbar",
            "mode_coverage_scatter",
            "histogram_energy",
        )
    },
    "ebm.plot.colorbar_extend": "a display decision (which colourbar ends clip) on values already "
    "drawn; NaN cells are ignored by design (its docstring)",
    "ebm.recipe.parse_args": "a command line: argparse rejects bad flags itself (exit status 2)",
    "ebm.recipe.save_figure": "recipe output scaffolding (a Figure and a path; test_recipe.py)",
    "ebm.recipe.write_results": "recipe output scaffolding (a dict and a path; test_recipe.py)",
    "ebm.recipe.save_samples": "recipe output scaffolding (arrays and a path; test_recipe.py)",
    "ebm.recipe.format_number": "recipe output: formats any value for a printed table "
    "(test_recipe.py)",
    "ebm.recipe.print_table": "recipe output: prints a table of any values (test_recipe.py)",
}
