"""Fully connected CRF post-processing of segmentation probabilities (DeepLab's dense CRF).

``dense_crf`` is the one entry point; backends: ``exact`` (pydensecrf, CPU) and ``fast`` (a torch port
of the same permutohedral-lattice mean-field, any torch device). Both give the same probabilities up to
float rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.crf.exact import CrfUnavailable, crf_exact, exact_available
from engine.crf.fast import crf_fast
from engine.crf.params import DEEPLAB_RANGES, CrfParams

__all__ = ["BACKENDS", "DEEPLAB_RANGES", "CrfParams", "CrfUnavailable", "crf_available", "dense_crf"]

BACKENDS = ("exact", "fast")
SUM_TOLERANCE = 1e-3


def crf_available() -> bool:
    """True when the ``exact`` backend (the ``pydensecrf`` module) can be used; ``fast`` always can."""
    return exact_available()


def _check_inputs(image: np.ndarray, probs: np.ndarray) -> None:
    """Raise ValueError unless image is (H, W, 3) uint8 and probs (C, H, W) float32 distributions."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {got}")
    if not isinstance(probs, np.ndarray) or probs.dtype != np.float32 or probs.ndim != 3:
        got = f"{probs.dtype} {probs.shape}" if isinstance(probs, np.ndarray) else type(probs).__name__
        raise ValueError(f"probs must be a (C, H, W) float32 array, got {got}")
    if probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs {probs.shape} and image {image.shape} disagree on (H, W)")
    if probs.shape[0] < 1 or probs.shape[1] < 1 or probs.shape[2] < 1:
        raise ValueError(f"probs must have at least one class and one pixel, got {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0:
        raise ValueError("probs must be finite and non-negative")
    sums = probs.sum(0, dtype=np.float64)
    if np.abs(sums - 1.0).max() > SUM_TOLERANCE:
        raise ValueError(f"probs must sum to 1 over classes (axis 0); worst pixel sums to "
                         f"{sums.flat[np.abs(sums - 1.0).argmax()]:.4f}")


def _check_device(device: str, backend: str) -> None:
    """Raise ValueError for an unknown or unavailable torch device, or a non-CPU exact run."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc
    if backend == "exact" and dev.type != "cpu":
        raise ValueError(f"the exact backend runs on the CPU only (got device={device!r}); use backend='fast'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")


def dense_crf(
    image: np.ndarray,
    probs: np.ndarray,
    params: CrfParams,
    backend: str = "exact",
    device: str = "cpu",
) -> np.ndarray:
    """Refine per-pixel class probabilities with a dense CRF.

    image: (H, W, 3) uint8 RGB, pixel (r, c) at image[r, c]; probs: (C, H, W) float32, summing to 1
    over C (e.g. a softmax upsampled to the image); params: kernel weights/widths and iterations.
    backend 'exact' (pydensecrf, CPU; raises CrfUnavailable when not installed) or 'fast' (torch on
    ``device``). Returns the mean-field marginals Q, (C, H, W) float32, summing to 1 over C.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown CRF backend {backend!r}: expected one of {', '.join(map(repr, BACKENDS))}")
    if not isinstance(params, CrfParams):
        raise ValueError(f"params must be a CrfParams, got {type(params).__name__}")
    params.validate()
    _check_inputs(image, probs)
    _check_device(device, backend)
    if backend == "exact":
        return crf_exact(image, probs, params)
    return crf_fast(image, probs, params, device=device)
