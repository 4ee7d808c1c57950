"""Dense CRF mean-field inference in torch (the ``fast`` backend): any device, GPU when given.

Same model and update as pydensecrf's ``DenseCRF2D`` with a Gaussian and a bilateral Potts kernel:
unary ``U = -log(clip(P, 1e-5, 1))``, ``Q = softmax(-U)``, then per iteration
``Q = softmax(-U + sum_k w_k n_k * K_k(n_k * Q))`` where ``K_k`` is a Gaussian filter over the
kernel's features (positions / theta, colours / theta_beta) and ``n_k = 1 / sqrt(K_k(1))`` is
densecrf's symmetric normalisation (``NORMALIZE_SYMMETRIC``). A positive Potts weight ``w`` is
pydensecrf's ``compat=w`` (internally ``-w * Q``, subtracted from the energy).

Design choice: instead of a ConvCRF-style truncated window (which cannot reach theta_alpha = 60 px
without heavy downsampling that blurs colour edges), ``K_k`` is a torch port of the very permutohedral
lattice densecrf uses (``engine.crf.lattice``), so both backends compute the same approximation of the
Gaussian and agree to float rounding. As in densecrf, the lattice filter keeps each pixel's own
contribution (k(i, i) is not subtracted).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from engine.crf.lattice import Permutohedral
from engine.crf.params import CrfParams

UNARY_CLIP = 1e-5  # pydensecrf.utils.unary_from_softmax's default


def _pixel_grid(h: int, w: int, theta: float, device: torch.device) -> Tensor:
    """(H*W, 2) float32 features (x / theta, y / theta), row-major pixels, x = column."""
    t = torch.tensor(theta, dtype=torch.float32, device=device)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs.flatten() / t, ys.flatten() / t], 1)


class _Kernel:
    """One normalised Potts pairwise term: the lattice filter with weight and normalisation folded in."""

    def __init__(self, features: Tensor, weight: float) -> None:
        lattice = Permutohedral(features)
        ones = torch.ones((features.shape[0], 1), dtype=torch.float32, device=features.device)
        norm = (1.0 / torch.sqrt(lattice.compute(ones) + 1e-20))[:, 0]
        self.filter = lattice.scaled(pre=norm, post=weight * norm)

    def message(self, q: Tensor) -> Tensor:
        """``w * n * K(n * Q)`` for Q (N, C) -> (N, C)."""
        return self.filter.compute(q)

    def add_message(self, energy: Tensor, q: Tensor) -> Tensor:
        """``energy + message(q)`` without a separate (N, C) addition."""
        return self.filter.compute_add(energy, q)


def crf_fast_torch(image: Tensor, probs: Tensor, params: CrfParams) -> Tensor:
    """Mean-field on tensors: image (H, W, 3) uint8 RGB, probs (C, H, W) float32 -> (C, H, W) float32.

    Runs on ``probs.device`` (the image is moved there). Inputs are assumed validated.
    """
    dev = probs.device
    c, h, w = probs.shape
    n = h * w
    unary = -torch.log(probs.to(torch.float32).reshape(c, n).t().clamp(UNARY_CLIP, 1.0))  # (N, C)
    kernels = []
    if params.w_gaussian > 0:
        kernels.append(_Kernel(_pixel_grid(h, w, params.theta_gamma, dev), params.w_gaussian))
    if params.w_bilateral > 0:
        rgb = image.to(dev).reshape(n, 3).to(torch.float32) / torch.tensor(
            params.theta_beta, dtype=torch.float32, device=dev
        )
        feats = torch.cat([_pixel_grid(h, w, params.theta_alpha, dev), rgb], 1)
        kernels.append(_Kernel(feats, params.w_bilateral))
    neg_unary = unary.neg_()
    q = torch.softmax(neg_unary, 1)
    for _ in range(params.iterations):
        energy = neg_unary
        for k in kernels:  # -U + sum_k messages, each added by the slice's sparse addmm (no extra pass)
            energy = k.add_message(energy, q)
        q = torch.softmax(energy, 1)
    return q.t().reshape(c, h, w).contiguous()


def crf_fast(image: np.ndarray, probs: np.ndarray, params: CrfParams, device: str = "cpu") -> np.ndarray:
    """image (H, W, 3) uint8 RGB, probs (C, H, W) float32 -> refined probs (C, H, W) float32 (numpy)."""
    dev = torch.device(device)
    with torch.no_grad():
        img_t = torch.from_numpy(np.require(image, requirements=["C", "W"]))  # copies read-only arrays
        out = crf_fast_torch(img_t, torch.from_numpy(np.require(probs, requirements=["C", "W"])).to(dev), params)
    return out.cpu().numpy().astype(np.float32, copy=False)
