"""MC dropout for classification (notes ch. 21, figures 21.8–21.9): a small dropout LeNet on the
8×8 digits, then one digit turned step by step; 100 passes per image give a cloud of softmax
inputs and outputs, and the predictive entropy and mutual information along the rotation.
"""

import torch
from matplotlib import pyplot as plt
from torch import nn

from ebm.bayes import MCDropout, Supervised, mean_probs, mutual_information, predictive_entropy
from ebm.data import digits, rotate_images, rotated_digit
from ebm.metrics import brier_score, expected_calibration_error, ood_auroc
from ebm.plot import image_grid, use_style
from ebm.recipe import parse_args, print_table, save_figure, save_samples, write_results
from ebm.train import Trainer

args = parse_args(__doc__.splitlines()[0])
use_style()
epochs = 4 if args.quick else 40
torch.manual_seed(args.seed)

# data: the 8×8 digits; the probe is the first "1" of the test split, turned by 0..165 degrees
x_train, y_train = digits("train", seed=args.seed)
x_test, y_test = digits("test", seed=args.seed)
index = int((y_test == 1).nonzero()[0])
images, angles, label = rotated_digit(index, torch.linspace(0, 165, 12), seed=args.seed)

# a LeNet-like net with dropout (p = 0.5) after the last inner-product layer, as in the notes
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
model = Supervised(net, loss="cross_entropy", optimizer="adam", lr=2e-3, weight_decay=1e-4)
Trainer(max_epochs=epochs, batch_size=64, device=args.device, seed=args.seed).fit(
    model, (x_train, y_train)
)
net = net.cpu().eval()

# 100 passes per rotated image: logits (T, A, 10)
mc = MCDropout(net, n_samples=100, seed=args.seed)
pred = mc.predict(images)
probs = torch.softmax(pred.samples, -1)
with torch.no_grad():
    eval_probs = torch.softmax(net(images), -1)
shown = mean_probs(pred).max(0).values.topk(3).indices.tolist()  # the three classes that matter

fig = plt.figure(figsize=(10, 10))
grid_spec = fig.add_gridspec(4, 1, height_ratios=[0.8, 2, 2, 1.6])
image_grid(
    fig.add_subplot(grid_spec[0]), images, nrow=len(images), title=f"a rotated {label} (fig. 21.8)"
)
steps = torch.arange(len(images), dtype=torch.float32)
jitter = 0.12 * torch.randn(
    pred.samples.shape[0], len(images), generator=torch.Generator().manual_seed(0)
)
rows = ((pred.samples, "softmax input (logit)"), (probs, "softmax output (probability)"))
for row, (values, name) in enumerate(rows):
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
    ax.set_ylabel(name)
    if row == 0:
        ax.set_title("100 passes per image (fig. 21.9)")
    ax.set_xticks(steps, [f"{a:.0f}°" for a in angles])
    ax.set_xlabel("rotation (degrees)")
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
ax = fig.add_subplot(grid_spec[3])
ax.plot(angles, predictive_entropy(pred), "o-", label="predictive entropy (MC)")
ax.plot(angles, mutual_information(pred), "s-", label="mutual information (epistemic)")
eval_entropy = -(eval_probs * eval_probs.clamp_min(1e-30).log()).sum(1)
ax.plot(angles, eval_entropy, "^--", label="entropy, eval-mode softmax")
ax.set_xlabel("rotation (degrees)")
ax.set_ylabel("uncertainty (nats)")
ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, args.out, "mc_dropout_classification")

# numbers: test-set calibration of MC vs eval-mode probabilities; OOD = test digits turned 90°
test_mc = mc.predict(x_test)
with torch.no_grad():
    test_eval = torch.softmax(net(x_test), -1)
turned = mc.predict(rotate_images(x_test, torch.full((len(x_test),), 90.0)))
results = {
    "epochs": epochs,
    "label": label,
    "test_accuracy_mc": (mean_probs(test_mc).argmax(1) == y_test).float().mean(),
    "test_accuracy_eval": (test_eval.argmax(1) == y_test).float().mean(),
    "ece_mc": expected_calibration_error(mean_probs(test_mc), y_test),
    "ece_eval": expected_calibration_error(test_eval, y_test),
    "brier_mc": brier_score(mean_probs(test_mc), y_test),
    "brier_eval": brier_score(test_eval, y_test),
    "ood_auroc_entropy": ood_auroc(predictive_entropy(test_mc), predictive_entropy(turned)),
    "ood_auroc_mutual_information": ood_auroc(
        mutual_information(test_mc), mutual_information(turned)
    ),
    "rotation_predicted_classes": mean_probs(pred).argmax(1),
    "rotation_entropy": predictive_entropy(pred),
}
write_results(args.out, "mc_dropout_classification", results)
save_samples(
    args.out,
    "mc_dropout_classification",
    {"images": images, "angles": angles, "logits": pred.samples, "eval_probs": eval_probs},
)
print_table(
    f"8×8 digits, {epochs} epochs: MC dropout (100 passes) vs the eval-mode net",
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
