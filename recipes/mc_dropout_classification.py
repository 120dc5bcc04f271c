"""MC dropout for classification (notes ch. 21, figures 21.8–21.9): a dropout LeNet, then a "1"
turned step by step; 100 passes per image give a cloud of softmax inputs and outputs, and the
predictive entropy and mutual information along the rotation, for that digit and averaged over
every test "1" (up to 40).

Default data: scikit-learn's 8×8 digits (offline) and a small LeNet-like net. ``--data-dir``
pointing at the MNIST IDX files runs the notes' setting instead: 28×28 MNIST and the Caffe LeNet
(conv 20@5×5, pool, conv 50@5×5, pool, 500 ReLU units, dropout p = 0.5, 10 outputs), 3 epochs,
written as ``mc_dropout_classification_mnist``. Besides the network's reading, the recipe asks the
data: the 5 nearest training images (pixel distance) of each turned "1" and how far the nearest is,
against a test digit's typical distance to its nearest training image.

Beyond MC dropout, on one half of the evaluated test images (the other half fits and calibrates):
temperature and vector scaling, last-layer Laplace (probit), SWAG (8×8 digits only), APS and RAPS
conformal sets at α = 0.1; accuracy, NLL, ECE, adaptive ECE, Brier, AURC, and OOD AUROC and FPR at
95 % TPR against the same images turned 90°; ``<out>/<name>_reliability.png`` the reliability
diagrams.
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import (
    SWAG,
    LastLayerLaplace,
    MCDropout,
    SplitConformalClassifier,
    Supervised,
    SWAGCallback,
    TemperatureScaling,
    VectorScaling,
    caffe_lenet,
    mean_probs,
    mutual_information,
    predictive_entropy,
)
from ebm.data import digits, mnist, rotate_images
from ebm.metrics import (
    adaptive_ece,
    aurc,
    brier_score,
    expected_calibration_error,
    fpr_at_tpr,
    ood_auroc,
)
from ebm.plot import image_grid, reliability_diagram, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer


def add_arguments(parser):
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")


args = parse_args(__doc__, add_arguments=add_arguments)
use_style()
torch.manual_seed(args.seed)
name = "mc_dropout_classification_mnist" if args.data_dir else "mc_dropout_classification"
angles = torch.linspace(0, 165, 12)
ONE = 1  # the digit that is turned

# ---- data and network ----------------------------------------------------------------------------
if args.data_dir:  # the notes' setting: MNIST and the Caffe LeNet, dropout before the last layer
    (x_train, y_train), (x_test, y_test) = mnist(args.data_dir), mnist(args.data_dir, train=False)
    epochs, batch, lr, weight_decay, n_eval = 3, 128, 1e-3, 5e-4, 2000
    if args.quick:
        x_train, y_train, epochs = x_train[:2048], y_train[:2048], 1
    net = caffe_lenet(p=0.5)
    data_name = "MNIST, Caffe LeNet"
else:  # 8×8 digits and a small LeNet-like net with dropout (p = 0.5) before the last layer
    x_train, y_train = digits("train", generator=torch.Generator().manual_seed(args.seed))
    x_test, y_test = digits("test", generator=torch.Generator().manual_seed(args.seed))
    epochs, batch, lr, weight_decay, n_eval = (4 if args.quick else 40), 64, 2e-3, 1e-4, None
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )
    data_name = "8×8 digits, small LeNet"
model = Supervised(net, loss="cross_entropy", optimizer="adam", lr=lr, weight_decay=weight_decay)
# SWAG collects the weights along the same run (8×8 digits: every epoch of the second half); the
# callback only reads them, the training is unchanged. Not on MNIST: 3 epochs give too few
# snapshots for a covariance.
swag_callback = None if args.data_dir else SWAGCallback(start_epoch=epochs // 2, max_rank=20)
Trainer(
    max_epochs=epochs,
    batch_size=batch,
    device=args.device,
    precision=args.precision,
    seed=args.seed,
    callbacks=[] if swag_callback is None else [swag_callback],
).fit(model, (x_train, y_train))
net = net.cpu().eval()
mc = MCDropout(net, n_samples=100, seed=args.seed)

# ---- the probe: the first test "1" turned by 0..165 degrees; then every test "1" (up to 40) ------
ones = (y_test == ONE).nonzero()[:40, 0]
index = int(ones[0])
images = rotate_images(x_test[index : index + 1].expand(len(angles), -1, -1, -1), angles)
images = images.clamp(0.0, 1.0)
pred = mc.predict(images)  # logits (T, A, 10)
probs = torch.softmax(pred.samples, -1)
with torch.no_grad():
    eval_probs = torch.softmax(net(images), -1)
shown = mean_probs(pred).max(0).values.topk(3).indices.tolist()  # the three classes that matter

turned = rotate_images(
    x_test[ones].repeat_interleave(len(angles), 0), angles.repeat(len(ones))
).clamp(0.0, 1.0)  # (n_ones · A, 1, H, W), one "1" after another
turned_pred = mc.predict(turned)
A = len(angles)
mean_entropy = predictive_entropy(turned_pred).reshape(len(ones), A).mean(0)
mean_mi = mutual_information(turned_pred).reshape(len(ones), A).mean(0)
read_as = mean_probs(turned_pred).argmax(1).reshape(len(ones), A)
majority = read_as.mode(0).values  # (A,) the class most turned "1"s are read as
majority_share = (read_as == majority).float().mean(0)

# what the data say: the 5 nearest training images (pixels) of each turned "1", and how far the
# nearest one is, relative to the median nearest-neighbour distance of 300 test digits
flat_train = x_train.flatten(1)
near_d, near_i = zip(
    *(torch.cdist(b.flatten(1), flat_train).topk(5, largest=False) for b in turned.split(256))
)
near_d, near_i = torch.cat(near_d), torch.cat(near_i)
knn_vote = y_train[near_i].mode(1).values.reshape(len(ones), A)
knn_majority = knn_vote.mode(0).values
knn_share = (knn_vote == knn_majority).float().mean(0)
typical = torch.cdist(x_test[:300].flatten(1), flat_train).min(1).values.median()
distance_ratio = (near_d[:, 0].reshape(len(ones), A) / typical).median(0).values

# ---- figure --------------------------------------------------------------------------------------
fig = plt.figure(figsize=(10, 12.5), layout="constrained")
grid_spec = fig.add_gridspec(4, 1, height_ratios=[0.8, 2, 2, 2])
image_grid(
    fig.add_subplot(grid_spec[0]),
    images,
    nrow=len(images),
    title=f"the first test {ONE}, turned (fig. 21.8)",
)
steps = torch.arange(A, dtype=torch.float32)
jitter = 0.12 * torch.randn(pred.samples.shape[0], A, generator=torch.Generator().manual_seed(0))
rows = ((pred.samples, "softmax input (logit)"), (probs, "softmax output"))
for row, (values, ylabel) in enumerate(rows):
    ax = fig.add_subplot(grid_spec[row + 1])
    for color, k in enumerate(shown):
        ax.scatter(
            (steps + jitter).flatten(),
            values[..., k].flatten(),
            s=4,
            alpha=0.3,
            color=f"C{color}",
            label=f"class {k}",
        )
    ax.set_ylabel(ylabel)
    if row == 0:
        ax.set_title("that digit: 100 passes per image (fig. 21.9)")
    ax.set_xticks(steps, [f"{a:.0f}°" for a in angles])
    ax.legend(loc="upper right", markerscale=3)
ax = fig.add_subplot(grid_spec[3])
ax.plot(angles, predictive_entropy(pred), "o-", color="C0", label="entropy, that digit (MC)")
ax.plot(angles, mutual_information(pred), "s-", color="C1", label="mutual information, that digit")
ax.plot(
    angles,
    mean_entropy,
    "o--",
    color="C0",
    alpha=0.6,
    label=f"entropy, mean of {len(ones)} test {ONE}s",
)
ax.plot(
    angles, mean_mi, "s--", color="C1", alpha=0.6, label=f"mutual information, mean of {len(ones)}"
)
ax.set_xticks(
    angles,
    [
        f"{a:.0f}°\n{cls}\n{100 * share:.0f}%"
        for a, cls, share in zip(angles.tolist(), majority.tolist(), majority_share.tolist())
    ],
)
ax.set_xlabel(
    f"rotation; below it: the class most of the {len(ones)} turned {ONE}s are read as, their share"
)
ax.set_ylabel("uncertainty (nats)")
ax.set_title("predictive entropy (total) and mutual information (epistemic) along the rotation")
top = max(predictive_entropy(pred).max(), mean_entropy.max())
ax.set_ylim(-0.03 * top, 1.45 * top)  # head room for the legend
ax.legend(ncols=2, fontsize=8, loc="upper center")
middle = (angles >= 60) & (angles <= 120)
at_90 = int((angles - 90).abs().argmin())
more_or_less = "MORE" if mean_entropy[middle].mean() > mean_entropy[~middle].mean() else "LESS"
fig.suptitle(
    f"MC dropout on a turned {ONE} ({data_name}): mean entropy over the {len(ones)} test {ONE}s "
    f"{mean_entropy[middle].mean():.2f} nats at 60–120°, {mean_entropy[~middle].mean():.2f} "
    f"elsewhere:\nthe middle rotations are {more_or_less} uncertain than the rest (the notes' "
    f"fig. 21.9: more). At 90° {100 * majority_share[at_90]:.0f}% of the turned {ONE}s are read "
    f"as {majority[at_90]};\ntheir 5 nearest training images (pixels) vote {knn_majority[at_90]} "
    f"for {100 * knn_share[at_90]:.0f}% of them, the nearest "
    f"{distance_ratio[at_90]:.1f}× as far as a test digit's"
)
save_figure(fig, args.out, name)

# ---- numbers: test-set calibration of MC vs eval-mode probabilities; OOD = test digits turned 90° -
x_eval, y_eval = (x_test, y_test) if n_eval is None else (x_test[:n_eval], y_test[:n_eval])
test_mc = mc.predict(x_eval)
with torch.no_grad():
    test_eval = torch.softmax(net(x_eval), -1)
turned_90 = mc.predict(rotate_images(x_eval, torch.full((len(x_eval),), 90.0)))
results = {
    "data": "mnist" if args.data_dir else "digits8x8",
    "epochs": epochs,
    "label": ONE,
    "test_index": index,
    "n_test_eval": len(x_eval),
    "test_accuracy_mc": (mean_probs(test_mc).argmax(1) == y_eval).float().mean(),
    "test_accuracy_eval": (test_eval.argmax(1) == y_eval).float().mean(),
    "ece_mc": expected_calibration_error(mean_probs(test_mc), y_eval),
    "ece_eval": expected_calibration_error(test_eval, y_eval),
    "brier_mc": brier_score(mean_probs(test_mc), y_eval),
    "brier_eval": brier_score(test_eval, y_eval),
    "ood_auroc_entropy": ood_auroc(predictive_entropy(test_mc), predictive_entropy(turned_90)),
    "ood_auroc_mutual_information": ood_auroc(
        mutual_information(test_mc), mutual_information(turned_90)
    ),
    "angles": angles,
    "rotation_predicted_classes": mean_probs(pred).argmax(1),
    "rotation_entropy": predictive_entropy(pred),
    "rotation_mutual_information": mutual_information(pred),
    "n_ones": len(ones),
    "ones_mean_entropy": mean_entropy,
    "ones_mean_mutual_information": mean_mi,
    "ones_mean_entropy_60_to_120": mean_entropy[middle].mean(),
    "ones_mean_entropy_elsewhere": mean_entropy[~middle].mean(),
    "ones_majority_class": majority,
    "ones_majority_share": majority_share,
    "ones_5nn_majority_class": knn_majority,
    "ones_5nn_majority_share": knn_share,
    "ones_nearest_distance_over_test_median": distance_ratio,
}
# ---- issue 17: post-hoc calibration, last-layer Laplace, SWAG, conformal sets --------------------
# Held-out split: the evaluated test images, shuffled (seed + 2), in two halves. The first half
# (validation) fits temperature and vector scaling and calibrates the conformal sets (on the raw
# net and on MC dropout, which never see it); every method is scored on the second half, and
# OOD is that half turned 90°. (Conformal sets on the temperature-scaled probabilities would need
# a third split; temperature scaling keeps the ranking, and the guarantee needs no calibration.)
perm = torch.randperm(len(x_eval), generator=torch.Generator().manual_seed(args.seed + 2))
val, held = perm[: len(perm) // 2], perm[len(perm) // 2 :]
x_val, y_val, x_held, y_held = x_eval[val], y_eval[val], x_eval[held], y_eval[held]
x_turned = rotate_images(x_held, torch.full((len(x_held),), 90.0))
with torch.no_grad():
    logits_val, logits_held, logits_turned = net(x_val), net(x_held), net(x_turned)
temperature = TemperatureScaling().fit(logits_val, y_val)
vector = VectorScaling().fit(logits_val, y_val)
laplace = LastLayerLaplace(net, "classification", hessian="kron" if args.data_dir else "full")
laplace = laplace.fit(x_train, y_train).optimize_prior_precision()
probs = {  # (probabilities of the held-out half, of the same images turned 90°)
    "eval": (logits_held.softmax(-1), logits_turned.softmax(-1)),
    "mc_dropout": (mean_probs(test_mc)[held], mean_probs(turned_90)[held]),
    "temperature": (
        temperature.predict_proba(logits_held),
        temperature.predict_proba(logits_turned),
    ),
    "vector": (vector.predict_proba(logits_held), vector.predict_proba(logits_turned)),
    "laplace": (laplace.predict(x_held).mean, laplace.predict(x_turned).mean),
}
if swag_callback is not None:
    swag = SWAG(net, swag_callback)
    probs["swag"] = tuple(
        mean_probs(
            swag.predict(images, n_samples=30, generator=torch.Generator().manual_seed(args.seed))
        )
        for images in (x_held, x_turned)
    )
    results["swag_snapshots"] = swag_callback.n_collected
results["n_validation"], results["n_held_out"] = len(val), len(held)
results["temperature"] = temperature.temperature_
results["laplace_prior_precision"] = laplace.prior_precision
for method, (p, p_turned) in probs.items():
    entropy, entropy_turned = torch.special.entr(p).sum(-1), torch.special.entr(p_turned).sum(-1)
    picked = p.gather(1, y_held[:, None]).squeeze(1)
    results[f"{method}_accuracy"] = (p.argmax(1) == y_held).float().mean()
    results[f"{method}_nll"] = -picked.clamp_min(1e-30).log().mean()
    results[f"{method}_ece"] = expected_calibration_error(p, y_held)
    results[f"{method}_adaptive_ece"] = adaptive_ece(p, y_held)
    results[f"{method}_brier"] = brier_score(p, y_held)
    results[f"{method}_aurc"] = aurc(p.max(1).values, p.argmax(1) == y_held)
    results[f"{method}_ood_auroc"] = ood_auroc(entropy, entropy_turned)
    results[f"{method}_fpr_at_95"] = fpr_at_tpr(entropy, entropy_turned, 0.95)

ALPHA = 0.1
set_predictors = {
    "eval": lambda images: net(images).softmax(-1),
    "mc_dropout": MCDropout(net, n_samples=100, seed=args.seed),
}
with torch.no_grad():
    for method, predictor in set_predictors.items():
        for conformal in ("aps", "raps"):
            cp = SplitConformalClassifier(predictor, alpha=ALPHA, method=conformal, seed=args.seed)
            sets = cp.calibrate(x_val, y_val).predict(x_held)
            key = f"{method}_{conformal}"
            results[f"{key}_coverage"] = sets[torch.arange(len(held)), y_held].double().mean()
            results[f"{key}_mean_size"] = sets.sum(1).double().mean()
            results[f"{key}_empty_fraction"] = (sets.sum(1) == 0).double().mean()
results["conformal_alpha"] = ALPHA

# reliability diagrams on the held-out half: the net before and after temperature scaling,
# last-layer Laplace, MC dropout
fig, axes = plt.subplots(2, 2, figsize=(9, 9), sharex=True, sharey=True)
shown_methods = {
    "eval": "eval-mode net (before)",
    "temperature": f"temperature scaled (T = {float(temperature.temperature_):.2f})",
    "laplace": "last-layer Laplace, probit",
    "mc_dropout": "MC dropout, 100 passes",
}
for ax, (method, title) in zip(axes.flat, shown_methods.items()):
    reliability_diagram(ax, probs[method][0], y_held, n_bins=15, title=title)
for ax in axes[1]:
    ax.set_xlabel("confidence (top-class probability)")
for ax in axes[:, 0]:
    ax.set_ylabel("accuracy")
fig.suptitle(
    f"{data_name}: reliability on {len(held)} held-out test images "
    f"(temperature fitted on {len(val)} others)"
)
fig.tight_layout()
save_figure(fig, args.out, f"{name}_reliability")

write_results(args.out, name, results)
save_samples(
    args.out,
    name,
    {
        "images": images,
        "angles": angles,
        "logits": pred.samples,
        "eval_probs": eval_probs,
        # (T, n_ones, A, 10), half precision to keep the file small
        "ones_logits": turned_pred.samples.reshape(-1, len(ones), A, 10).half(),
    },
)
print_table(
    f"{data_name}, {epochs} epochs, {len(x_eval)} test images: MC dropout (100 passes) vs eval mode",
    {
        "test accuracy": {"MC": results["test_accuracy_mc"], "eval": results["test_accuracy_eval"]},
        "ECE": {"MC": results["ece_mc"], "eval": results["ece_eval"]},
        "Brier": {"MC": results["brier_mc"], "eval": results["brier_eval"]},
    },
)
print_table(
    "out of distribution (test digits turned 90°): AUROC",
    {
        "predictive entropy": results["ood_auroc_entropy"],
        "mutual information": results["ood_auroc_mutual_information"],
    },
)
print_table(
    f"the {len(ones)} test {ONE}s turned: the net's reading vs the pixel 5-NN's",
    {
        f"{a:.0f}°": {
            "mean entropy": mean_entropy[k],
            "mean MI": mean_mi[k],
            "net reads": f"{majority[k]} ({100 * majority_share[k]:.0f}%)",
            "5-NN reads": f"{knn_majority[k]} ({100 * knn_share[k]:.0f}%)",
            "NN distance / typical": distance_ratio[k],
        }
        for k, a in enumerate(angles.tolist())
    },
    header="angle",
)
labels = {
    "eval": "eval mode",
    "mc_dropout": "MC dropout",
    "temperature": "temperature scaling",
    "vector": "vector scaling",
    "laplace": "last-layer Laplace",
    "swag": "SWAG",
}
print_table(
    f"{len(held)} held-out test images (scaling fitted on {len(val)} others); OOD: them turned 90°",
    {
        labels[method]: {
            "acc": results[f"{method}_accuracy"],
            "NLL": results[f"{method}_nll"],
            "ECE": results[f"{method}_ece"],
            "AdaECE": results[f"{method}_adaptive_ece"],
            "Brier": results[f"{method}_brier"],
            "AURC": results[f"{method}_aurc"],
            "OOD AUROC": results[f"{method}_ood_auroc"],
            "FPR@95": results[f"{method}_fpr_at_95"],
        }
        for method in probs
    },
    header="method",
)
print_table(
    f"conformal sets at α = {ALPHA} (calibrated on the {len(val)} validation images)",
    {
        f"{labels[method]}, {conformal.upper()}": {
            "coverage": results[f"{method}_{conformal}_coverage"],
            "mean size": results[f"{method}_{conformal}_mean_size"],
            "empty": results[f"{method}_{conformal}_empty_fraction"],
        }
        for method in set_predictors
        for conformal in ("aps", "raps")
    },
    header="sets",
)
