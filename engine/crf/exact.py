"""Dense CRF through ``pydensecrf`` (the ``exact`` backend: Krähenbühl's C++ code, CPU only).

The module comes from the PyPI package ``pydensecrf2`` (builds from source, needs a C++ compiler);
it is imported lazily so the rest of the engine works without it.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from engine.crf.params import CrfParams

INSTALL_HINT = "install it with `pip install pydensecrf2` (builds from source; needs a C++ compiler)"


class CrfUnavailable(RuntimeError):
    """The exact backend's ``pydensecrf`` module cannot be imported."""


def _import() -> tuple[ModuleType, ModuleType]:
    """(pydensecrf.densecrf, pydensecrf.utils), or raise CrfUnavailable with install instructions."""
    try:
        import pydensecrf.densecrf as dcrf
        import pydensecrf.utils as dutils
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CrfUnavailable(f"the exact dense CRF needs the `pydensecrf` module: {INSTALL_HINT} ({exc})") from exc
    return dcrf, dutils


def exact_available() -> bool:
    """True when ``pydensecrf`` imports."""
    try:
        _import()
    except CrfUnavailable:
        return False
    return True


def crf_exact(image: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    """image (H, W, 3) uint8 RGB, probs (C, H, W) float32 -> refined probs (C, H, W) float32.

    Unary ``-log p`` (``unary_from_softmax``), ``addPairwiseGaussian(sxy=theta_gamma, compat=w_gaussian)``,
    ``addPairwiseBilateral(sxy=theta_alpha, srgb=theta_beta, compat=w_bilateral)``, ``inference``.
    A kernel with weight 0 is not added (adding it would change nothing).
    """
    dcrf, dutils = _import()
    c, h, w = probs.shape
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(dutils.unary_from_softmax(probs), dtype=np.float32))
    if params.w_gaussian > 0:
        crf.addPairwiseGaussian(sxy=params.theta_gamma, compat=params.w_gaussian)
    if params.w_bilateral > 0:
        crf.addPairwiseBilateral(
            sxy=params.theta_alpha,
            srgb=params.theta_beta,
            rgbim=np.require(image, requirements=["C", "W"]),  # Cython wants a writable C buffer
            compat=params.w_bilateral,
        )
    q = np.asarray(crf.inference(params.iterations), dtype=np.float32)
    return q.reshape(c, h, w)
