"""Dense CRF: parameters, both backends against the truth, against each other and against pydensecrf."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from engine.crf import CrfParams, CrfUnavailable, crf_available, dense_crf
from engine.crf.lattice import Permutohedral

needs_exact = pytest.mark.skipif(not crf_available(), reason="pydensecrf not importable (pip install pydensecrf2)")
BACKENDS = [pytest.param("exact", marks=needs_exact), "fast"]

COLOURS = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210], [230, 220, 90]])


def regions(h: int = 64, w: int = 72) -> np.ndarray:
    """(H, W) int64 truth: left/right halves, a disc and a bar (4 classes); H != W on purpose."""
    yy, xx = np.mgrid[:h, :w]
    truth = (xx >= w // 2).astype(np.int64)
    truth[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 5) ** 2] = 2
    truth[h - 12 : h - 4, w // 2 :] = 3
    return truth


def scene(noise: float = 1.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 with mild colour noise, noisy probs (4, H, W) float32, truth (H, W))."""
    rng = np.random.default_rng(seed)
    truth = regions()
    image = np.clip(COLOURS[truth] + rng.normal(0, 6, (*truth.shape, 3)), 0, 255).astype(np.uint8)
    logits = np.eye(4)[truth].transpose(2, 0, 1) + rng.normal(0, noise, (4, *truth.shape))
    probs = np.exp(logits)
    return image, (probs / probs.sum(0)).astype(np.float32), truth


def test_params_defaults_validate_and_round_trip():
    p = CrfParams()
    assert p.validate() is p
    assert (p.w_bilateral, p.theta_alpha, p.theta_beta, p.w_gaussian, p.theta_gamma, p.iterations) == (
        4.0, 60.0, 5.0, 3.0, 3.0, 10)
    assert CrfParams.from_dict(p.to_dict()) == p
    assert CrfParams.from_dict({"iterations": 5}).iterations == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [("w_bilateral", -1.0), ("w_gaussian", -0.1), ("theta_alpha", 0.0), ("theta_beta", -2.0),
     ("theta_gamma", float("nan")), ("iterations", 0), ("iterations", 101), ("iterations", 2.5),
     ("w_bilateral", float("inf")), ("theta_alpha", "60")],
)
def test_params_reject_out_of_range(field, value):
    with pytest.raises(ValueError, match=field):
        CrfParams(**{field: value}).validate()


def test_params_from_dict_rejects_unknown_and_invalid():
    with pytest.raises(ValueError, match="sxy"):
        CrfParams.from_dict({"sxy": 3})
    with pytest.raises(ValueError, match="iterations"):
        CrfParams.from_dict({"iterations": -1})


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_pairwise_weights_keep_unary_argmax(backend):
    image, probs, _ = scene()
    out = dense_crf(image, probs, CrfParams(w_bilateral=0.0, w_gaussian=0.0, iterations=3), backend=backend)
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(0), probs.argmax(0))
    np.testing.assert_allclose(out, probs, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_crf_raises_agreement_with_truth(backend):
    image, probs, truth = scene()
    before = (probs.argmax(0) == truth).mean()
    out = dense_crf(image, probs, CrfParams(), backend=backend)
    after = (out.argmax(0) == truth).mean()
    assert before < 0.75
    assert after > 0.97
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)


@needs_exact
@pytest.mark.parametrize(
    "params",
    [CrfParams(), CrfParams(w_bilateral=5.0, theta_alpha=30.0, theta_beta=3.0, iterations=5),
     CrfParams(w_gaussian=0.0, theta_beta=13.0), CrfParams(w_bilateral=0.0, theta_gamma=1.5, iterations=2)],
)
def test_fast_agrees_with_exact(params):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (6, 7, 3)).repeat(8, 0).repeat(10, 1)  # 48 x 70 colour blocks + noise
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    probs = rng.random((5, 48, 70)) ** 3
    probs = (probs / probs.sum(0)).astype(np.float32)
    exact = dense_crf(image, probs, params, backend="exact")
    fast = dense_crf(image, probs, params, backend="fast")
    assert (exact.argmax(0) == fast.argmax(0)).mean() >= 0.99
    np.testing.assert_allclose(fast, exact, atol=1e-4)


@needs_exact
def test_exact_equals_pydensecrf_directly():
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    image, probs, _ = scene(seed=1)
    p = CrfParams(w_bilateral=5.0, theta_alpha=80.0, theta_beta=4.0, iterations=7)
    c, h, w = probs.shape
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(unary_from_softmax(probs))
    crf.addPairwiseGaussian(sxy=3.0, compat=3.0)
    crf.addPairwiseBilateral(sxy=80.0, srgb=4.0, rgbim=image, compat=5.0)
    direct = np.array(crf.inference(7), dtype=np.float32).reshape(c, h, w)
    np.testing.assert_array_equal(dense_crf(image, probs, p, backend="exact"), direct)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_and_tiny_inputs(backend):
    image, probs, _ = scene()
    image.flags.writeable = False
    probs.flags.writeable = False
    out = dense_crf(image, probs, CrfParams(iterations=2), backend=backend)
    assert out.shape == probs.shape
    one = dense_crf(np.zeros((1, 1, 3), np.uint8), np.ones((1, 1, 1), np.float32), CrfParams(), backend=backend)
    np.testing.assert_allclose(one, 1.0)
    strip = dense_crf(image[:1, :9].copy(), probs[:2, :1, :9] / probs[:2, :1, :9].sum(0), CrfParams(), backend=backend)
    assert strip.shape == (2, 1, 9)


def test_lattice_approximates_a_gaussian_filter():
    gen = torch.Generator().manual_seed(0)
    f = torch.rand(300, 2, generator=gen) * 4  # features in kernel-width units
    v = torch.rand(300, 1, generator=gen)
    dense = torch.exp(-torch.cdist(f, f) ** 2 / 2) @ v
    approx = Permutohedral(f).compute(v)
    corr = torch.corrcoef(torch.cat([dense, approx], 1).t())[0, 1]
    assert corr > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fast_on_cuda_matches_cpu():
    image, probs, _ = scene()
    cpu = dense_crf(image, probs, CrfParams(), backend="fast")
    gpu = dense_crf(image, probs, CrfParams(), backend="fast", device="cuda")
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_bad_inputs_rejected():
    image, probs, _ = scene()
    p = CrfParams()
    with pytest.raises(ValueError, match="image"):
        dense_crf(image.astype(np.float32), probs, p, backend="fast")
    with pytest.raises(ValueError, match="image"):
        dense_crf(image[..., :2], probs, p, backend="fast")
    with pytest.raises(ValueError, match="probs"):
        dense_crf(image, probs.astype(np.float64), p, backend="fast")
    with pytest.raises(ValueError, match="disagree"):
        dense_crf(image, probs[:, :-1], p, backend="fast")
    with pytest.raises(ValueError, match="sum to 1"):
        dense_crf(image, probs * 2, p, backend="fast")
    bad = probs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        dense_crf(image, bad, p, backend="fast")
    with pytest.raises(ValueError, match="backend"):
        dense_crf(image, probs, p, backend="permutohedral")
    with pytest.raises(ValueError, match="theta_beta"):
        dense_crf(image, probs, CrfParams(theta_beta=0.0), backend="fast")
    with pytest.raises(ValueError, match="CrfParams"):
        dense_crf(image, probs, {"iterations": 3}, backend="fast")
    with pytest.raises(ValueError, match="device"):
        dense_crf(image, probs, p, backend="fast", device="tpu:7")
    with pytest.raises(ValueError, match="CPU only"):
        dense_crf(image, probs, p, backend="exact", device="cuda")


def test_missing_pydensecrf_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)  # makes the import fail
    image, probs, _ = scene()
    assert crf_available() is False
    with pytest.raises(CrfUnavailable, match="pip install pydensecrf2"):
        dense_crf(image, probs, CrfParams(), backend="exact")
    assert dense_crf(image, probs, CrfParams(iterations=1), backend="fast").shape == probs.shape
