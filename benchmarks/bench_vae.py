"""Our VAE (through ebm's Trainer) against pythae's VAE (through pythae's BaseTrainer) on the 8×8
digits: the same MLP architecture (64 → 256 → ReLU → 2·8, 8 → 256 → ReLU → 64 → sigmoid), the
same objective (summed Bernoulli cross-entropy + KL with its ½, averaged over the batch), Adam
1e-3, batch 64, the same epochs.

Rows: training time per epoch (each pipeline's whole ``fit``/``train`` divided by the epochs,
interleaved medians; target ≤ 0.8× pythae) and the held-out negative ELBO per test image (both
models scored by one evaluator with the same noise; target: ours no worse).
pythae is optional (``pip install pythae``); without it the rows say so.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.timing import compare
from ebm.data import digits
from ebm.models import VAE
from ebm.models.vae import gaussian_kl, mlp_decoder, mlp_encoder
from ebm.train import Trainer

LATENT, HIDDEN, EPOCHS, BATCH, LR = 8, 256, 20, 64, 1e-3


def _neg_elbo(encode, decode_probs, x: torch.Tensor, n_draws: int = 20) -> float:
    """Mean over test images of E_q[−log p(y|z)] + KL, with common random numbers."""
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        mu, logvar = encode(x)
        total = 0.0
        for _ in range(n_draws):
            z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
            p = decode_probs(z).reshape(len(x), -1).clamp(1e-7, 1 - 1e-7)
            total += (
                F.binary_cross_entropy(p, x.reshape(len(x), -1), reduction="none")
                .sum(1)
                .mean()
                .item()
            )
        return total / n_draws + gaussian_kl(mu, logvar).mean().item()


def _ours(train_x):
    torch.manual_seed(0)
    vae = VAE(
        mlp_encoder((1, 8, 8), LATENT, (HIDDEN,)),
        mlp_decoder((1, 8, 8), LATENT, (HIDDEN,)),
        LATENT,
        lr=LR,
    )
    Trainer(
        max_epochs=EPOCHS,
        batch_size=BATCH,
        device="cpu",
        seed=0,
        progress=False,
        log_every_n_steps=None,
    ).fit(vae, train_x)
    return vae


def _pythae(train_x):
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Flatten(), nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2 * LATENT)
            )

        def forward(self, x):
            mu, logvar = self.net(x).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 64), nn.Sigmoid()
            )

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(-1, 1, 8, 8))

    torch.manual_seed(0)
    config = VAEConfig(input_dim=(1, 8, 8), latent_dim=LATENT, reconstruction_loss="bce")
    model = PythaeVAE(config, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        trainer_config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=EPOCHS,
            learning_rate=LR,
            per_device_train_batch_size=BATCH,
            no_cuda=True,
            keep_best_on_train=True,  # without an eval set pythae keeps the best-on-train model
        )
        dataset = BaseDataset(train_x, torch.zeros(len(train_x)))
        # pythae prints progress bars and logs; keep them off the benchmark table
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            BaseTrainer(model=model, train_dataset=dataset, training_config=trainer_config).train()
    return model


def run() -> list[dict]:
    (train_x, _), (test_x, _) = digits("train"), digits("test")
    try:
        import pythae  # noqa: F401
    except ImportError:
        msg = "pythae not installed (pip install pythae)"
        return [
            {
                "name": "VAE time/epoch vs pythae",
                "ours": "",
                "peer": msg,
                "ratio": float("nan"),
                "target": "≤ 0.8",
            },
            {
                "name": "VAE held-out −ELBO vs pythae",
                "ours": "",
                "peer": msg,
                "ratio": float("nan"),
                "target": "≤ 1",
            },
        ]
    import pythae.trainers  # noqa: F401  (creates pythae's loggers, which set their own levels)

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.ERROR)
    trained = {}

    def ours():
        trained["ours"] = _ours(train_x)

    def peer():
        trained["peer"] = _pythae(train_x)

    timing = compare(ours, peer, repeats=5, warmup=1)
    ours_vae, peer_vae = trained["ours"], trained["peer"]
    nelbo_ours = _neg_elbo(ours_vae.encode, ours_vae.decode, test_x)
    nelbo_peer = _neg_elbo(
        lambda x: (lambda o: (o.embedding, o.log_covariance))(peer_vae.encoder(x)),
        lambda z: peer_vae.decoder(z).reconstruction,
        test_x,
    )
    return [
        {
            "name": f"VAE time/epoch vs pythae (digits, {EPOCHS} epochs)",
            "ours": f"{1000 * timing['ours_s'] / EPOCHS:.1f} ms",
            "peer": f"{1000 * timing['peer_s'] / EPOCHS:.1f} ms",
            "ratio": timing["ratio"],
            "target": "≤ 0.8",
        },
        {
            "name": "VAE held-out −ELBO per test image vs pythae",
            "ours": f"{nelbo_ours:.2f} nats",
            "peer": f"{nelbo_peer:.2f} nats",
            "ratio": nelbo_ours / nelbo_peer,
            "target": "≤ 1 (no worse)",
        },
    ]
