import numpy as np
import pytest
import scipy.linalg
import torch

from ebm.metrics import classifier_features, frechet_distance, gaussian_frechet_distance


def _spd(d, seed):
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_gaussian_frechet_matches_scipy_sqrtm():
    mu1, mu2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    c1, c2 = _spd(5, 0), _spd(5, 1)
    cross = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy())
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(c1.numpy() + c2.numpy() - 2 * cross.real)
    assert gaussian_frechet_distance(mu1, c1, mu2, c2).item() == pytest.approx(expected, rel=1e-8)


def test_gaussian_frechet_closed_form_for_diagonal_covariances():
    # diagonal covariances commute: FD = ‖μ₁ − μ₂‖² + Σ (σ₁ − σ₂)²
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 0.5, 0.5])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    fd = gaussian_frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert fd.item() == pytest.approx(5.0 + 4.0 + 2.25 + 0.0, rel=1e-10)


def test_frechet_distance_of_samples_zero_and_shift():
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert frechet_distance(x, x.clone()).item() == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    assert frechet_distance(x, x + shift).item() == pytest.approx(
        shift.pow(2).sum().item(), rel=1e-8
    )


def test_classifier_features_separate_digits_from_noise(tmp_path, monkeypatch):
    from ebm.data import digits
    from ebm.metrics import frechet as fr

    monkeypatch.setenv("EBM_CACHE", str(tmp_path))
    monkeypatch.setattr(fr, "_MEMO", {})
    state = torch.get_rng_state()
    model = fr.digit_classifier("digits")
    assert torch.equal(state, torch.get_rng_state())  # training forked the global RNG
    cached = tmp_path / "digits_classifier_v2.pt"
    assert cached.is_file()
    (test_x, test_y), (train_x, _) = digits("test"), digits("train")
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    assert accuracy > 0.9  # a real classifier, on held-out digits
    # the cached weights load (weights_only) to the same features
    monkeypatch.setattr(fr, "_MEMO", {})
    f1 = classifier_features(test_x[:50])
    assert torch.allclose(f1, model.features(test_x[:50]))
    n = len(test_x)
    real = fr.frechet_classifier_distance(train_x[:n], test_x).item()
    noise = fr.frechet_classifier_distance(
        torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)), test_x
    ).item()
    assert real < 0.1 * noise


def test_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="one D"):
        gaussian_frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="N, M >= 2"):
        frechet_distance(torch.zeros(1, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="\\(N, 1, 8, 8\\) digits or \\(N, 1, 28, 28\\) MNIST"):
        classifier_features(torch.zeros(3, 1, 16, 16))
    from ebm.metrics import frechet as fr

    monkeypatch.setenv("EBM_CACHE", str(tmp_path))  # no cached MNIST classifier there
    monkeypatch.setattr(fr, "_MEMO", {})
    with pytest.raises(ValueError, match="mnist_root is needed"):
        fr.digit_classifier("mnist")
    with pytest.raises(ValueError, match="dataset must be"):
        fr.digit_classifier("cifar")


def test_mnist_classifier_is_cached_per_training_set(tmp_path, monkeypatch):
    from idx_files import write_digits_as_mnist

    from ebm.data import mnist
    from ebm.metrics import frechet as fr

    cache = tmp_path / "cache"
    monkeypatch.setenv("EBM_CACHE", str(cache))
    monkeypatch.setattr(fr, "_MEMO", {})
    monkeypatch.setattr(fr, "_NAMES", {})
    # two different training sets, in torchvision's root/MNIST/raw layout
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder, offset in zip(folders, (0, 65)):
        write_digits_as_mnist(folder / "MNIST" / "raw", n_train=64, n_test=1, offset=offset)
    model_a = fr.digit_classifier("mnist", folders[0])
    assert len(list(cache.glob("mnist_*_classifier_v*.pt"))) == 1
    # without a root, the one cached classifier loads (a fresh process: nothing memoised)
    monkeypatch.setattr(fr, "_MEMO", {})
    x = mnist(folders[0])[0][:5]
    assert torch.allclose(fr.digit_classifier("mnist").features(x), model_a.features(x))
    # the same folder again: its hash is remembered, so no MNIST file is read
    import ebm.data.images

    monkeypatch.setattr(fr, "_MEMO", {})
    with monkeypatch.context() as m:
        m.setattr(ebm.data.images, "mnist", lambda *a, **k: pytest.fail("MNIST read again"))
        again = fr.digit_classifier("mnist", folders[0])
    assert torch.allclose(again.features(x), model_a.features(x))
    # another training set never reuses the first one's weights
    model_b = fr.digit_classifier("mnist", folders[1])
    assert len(list(cache.glob("mnist_*_classifier_v*.pt"))) == 2
    assert not torch.allclose(model_b.features(x), model_a.features(x))
    monkeypatch.setattr(fr, "_MEMO", {})
    with pytest.raises(ValueError, match="2 MNIST classifiers are cached.*pass mnist_root"):
        fr.digit_classifier("mnist")


# ---- the input convention (issue 12) --------------------------------------------------------


def test_gaussian_frechet_refuses_non_symmetric_and_non_psd_covariances():
    mu = torch.zeros(2)
    # both used to return a number (0 and −3)
    with pytest.raises(ValueError, match="cov1 must be a symmetric"):
        gaussian_frechet_distance(mu, torch.tensor([[1.0, 5.0], [0.0, 1.0]]), mu, torch.eye(2))
    with pytest.raises(ValueError, match="cov2 must be positive semi-definite"):
        gaussian_frechet_distance(mu, torch.eye(2), mu, torch.tensor([[1.0, 0.0], [0.0, -4.0]]))
    # symmetric but indefinite, with a tiny asymmetry: still refused as non-PSD
    with pytest.raises(ValueError, match="cov1 must be positive semi-definite"):
        gaussian_frechet_distance(mu, torch.tensor([[1.0, 2.0], [2.0, 1.0]]), mu, torch.eye(2))


def test_gaussian_frechet_accepts_rounding_level_asymmetry_and_singular_covariances():
    # covariances from more dimensions than samples are singular; float32 matmul leaves them
    # asymmetric in the last bits: both are valid input and match scipy's closed form
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(3, 6, generator=g), torch.randn(4, 6, generator=g)
    c1, c2 = a.T @ a / 3, b.T @ b / 4  # (6, 6), ranks 3 and 4
    c1[0, 1] += 1e-6 * c1.abs().max()  # asymmetric at float32 rounding level
    mu1, mu2 = torch.randn(6, generator=g), torch.randn(6, generator=g)
    c1n, c2n = c1.double().numpy(), c2.double().numpy()
    cross = scipy.linalg.sqrtm(c1n @ c2n)
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(c1n + c2n - 2 * cross.real)
    got = gaussian_frechet_distance(mu1, c1, mu2, c2)
    assert got.item() == pytest.approx(expected, rel=1e-4)
    # array-likes and integer matrices
    got_list = gaussian_frechet_distance([0, 0], [[2, 1], [1, 2]], [1, 0], np.eye(2, dtype=int))
    ref = 1 + np.trace(
        np.array([[2, 1], [1, 2]]) + np.eye(2) - 2 * scipy.linalg.sqrtm([[2, 1], [1, 2]])
    )
    assert got_list.item() == pytest.approx(ref.real, rel=1e-8)


def test_frechet_distance_takes_array_likes_and_integers():
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 5, (40, 3), generator=g)
    y = torch.randint(1, 7, (30, 3), generator=g)
    ref = frechet_distance(x.double(), y.double())
    torch.testing.assert_close(frechet_distance(x, y), ref)
    torch.testing.assert_close(frechet_distance(x.numpy(), y.tolist()), ref)


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda: gaussian_frechet_distance(
                [0.0, float("nan")], torch.eye(2), [0, 0], torch.eye(2)
            ),
            "mu1",
        ),
        (
            lambda: gaussian_frechet_distance(
                [0, 0], torch.eye(2) * float("inf"), [0, 0], torch.eye(2)
            ),
            "cov1",
        ),
        (lambda: gaussian_frechet_distance([0, 0], torch.eye(2), [0, 0], "eye"), "cov2"),
        (lambda: frechet_distance(torch.full((3, 2), float("nan")), torch.zeros(3, 2)), "x"),
        (lambda: frechet_distance(torch.zeros(3, 2), torch.zeros(3)), "y"),
        (lambda: frechet_distance(torch.zeros(3, 0), torch.zeros(3, 0)), "x"),
        (lambda: classifier_features(torch.full((2, 1, 8, 8), float("nan"))), "images"),
        (lambda: classifier_features(torch.zeros(0, 1, 8, 8)), "images"),
        (lambda: classifier_features(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)), "images"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_frechet_classifier_distance_names_fake_and_real():
    from ebm.metrics import frechet_classifier_distance

    real = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="fake"):
        frechet_classifier_distance(real * float("nan"), real)
    with pytest.raises(ValueError, match="real"):
        frechet_classifier_distance(real, (real * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="fake and real must be images of one size"):
        frechet_classifier_distance(real, torch.zeros(4, 1, 28, 28))  # no classifier is loaded


def test_digit_classifier_training_step_refuses_images_without_labels():
    """Two images alone were read as (images = the first, labels = the second)."""
    from ebm.metrics.frechet import DigitClassifier

    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(
        ValueError, match=r"batch must be \[images .*got Tensor of shape \(2, 1, 8, 8\)"
    ):
        DigitClassifier(8).training_step(images)
