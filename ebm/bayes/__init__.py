"""Bayesian predictors behind one ``Prediction`` interface. Classes load lazily."""

from ebm._lazy import lazy_namespace

_EXPORTS: dict[str, str] = {
    "Prediction": "prediction",
    "MCDropout": "mc_dropout",
    "tau_from": "mc_dropout",
    "dropout_modules": "mc_dropout",
    "mean_probs": "classification",
    "predictive_entropy": "classification",
    "expected_entropy": "classification",
    "mutual_information": "classification",
    "notes_regression_net": "nets",
    "caffe_lenet": "nets",
    "Supervised": "supervised",
    "GPRegressor": "gp",
    "SVIRegressor": "svi",
    "DeepEnsemble": "ensemble",
    "SplitConformalRegressor": "conformal",
    "SplitConformalClassifier": "conformal",
    "TemperatureScaling": "temperature",
    "VectorScaling": "temperature",
    "LastLayerLaplace": "laplace",
    "SWAG": "swag",
    "SWAGCallback": "swag",
}
__all__, __getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
