"""Grad-CAM (Selvaraju et al. 2017) for every model family, in ORIGINAL image pixels.

Own hooks, not the ``grad-cam`` package: that package is not installed in this environment, and the
torchvision detectors would need a target wrapper for it anyway (their eval forward returns post-NMS
detections, not a score tensor). One eval forward with autograd on (``engine.internals.run``) keeps the
chosen layer's activation A (K, h, w) in the graph; the target's score (``engine.internals.targets``:
a tag logit, a class's logits over its predicted region, a detection's class score) is backpropagated
to A with ``torch.autograd.grad`` (no ``.grad`` of any weight is touched), and

    alpha_k = mean over (h, w) of d score / d A_k,    cam = ReLU(sum_k alpha_k * A_k)      (h, w)

A layer with several maps (a detector's FPN levels) gives one cam per map; each is mapped to original
pixels and they are summed. Mapping: cell (i, j) sits at ``center0 + (i, j) * stride`` in model-input
pixels (the layer's analytic grid, ``engine.internals.trace``), i.e. at that times (sx, sy) in the
original image (``adapters.Frame``: the model's resize, padding at the bottom/right); the cam is sampled
bilinearly at every original pixel centre (x + 0.5, y + 0.5), holding the outer cells' values beyond
them. The result is divided by its maximum: [0, 1], all zeros when nothing speaks for the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.internals.adapters import Frame
from engine.internals.run import Probed, probed_forward
from engine.internals.targets import NO_BOX, TARGETS, Explained, Target
from engine.internals.trace import Grid


@dataclass(frozen=True)
class GradCam:
    """A class-activation map and what it explains (labels: ``engine.internals.targets``)."""

    cam: np.ndarray  # (H, W) float32 in [0, 1], original image pixels
    layer: str
    target_label: int  # -1 when there was nothing to explain
    target_score: float  # the detection score / probability of the target (NaN when none)
    target_box: np.ndarray  # (4,) float32 xyxy original pixels; NaN unless the target is a box
    target_index: int  # detection / tag / class index; -1 for an explicit box or none
    notice: str = ""


def to_original(cam: torch.Tensor, grid: Grid, frame: Frame) -> torch.Tensor:
    """(h, w) map on a layer's grid -> (H, W) float32 at the original pixel centres (module docstring)."""
    h, w = cam.shape
    H, W = frame.image_hw
    sx, sy = frame.scale
    dev = cam.device
    u = ((torch.arange(W, device=dev, dtype=torch.float64) + 0.5) / sx - grid.start[1]) / grid.jump[1]
    v = ((torch.arange(H, device=dev, dtype=torch.float64) + 0.5) / sy - grid.start[0]) / grid.jump[0]
    gx = (2 * u / (w - 1) - 1) if w > 1 else torch.zeros_like(u)
    gy = (2 * v / (h - 1) - 1) if h > 1 else torch.zeros_like(v)
    sample = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1).to(torch.float32)
    return F.grid_sample(cam[None, None].float(), sample[None], mode="bilinear", padding_mode="border",
                         align_corners=True)[0, 0]


def cam_of(p: Probed, explained: Explained) -> tuple[np.ndarray, str]:
    """The normalised (H, W) cam of ``explained``'s score at ``p``'s layer, and a notice ('' if none)."""
    acts = [t for t, _ in p.tensors]
    grads = torch.autograd.grad(explained.score, acts, allow_unused=True)
    H, W = p.frame.image_hw
    total = torch.zeros((H, W), dtype=torch.float32, device=acts[0].device)
    used = 0
    with torch.no_grad():
        for (act, grid), g in zip(p.tensors, grads):
            if g is None or grid is None:
                continue
            used += 1
            alpha = g[0].float().mean(dim=(1, 2))  # (K,)
            cam = torch.relu((alpha[:, None, None] * act[0].float()).sum(0))
            total += to_original(cam, grid, p.frame)
    if not used:
        return np.zeros((H, W), np.float32), f"the target does not depend on layer {p.layer.name!r}: nothing to show"
    peak = float(total.max())
    cam = (total / peak) if peak > 0 else torch.zeros_like(total)
    notice = "" if peak > 0 else "no positive evidence for the target at this layer (the map is all zeros)"
    return cam.clamp_(0, 1).cpu().numpy().astype(np.float32), notice


def explain(p: Probed, target: Target | int | None = None) -> GradCam:
    """Grad-CAM of ``target`` on a forward probed with ``grad=True`` (``int`` = ``Target(index=...)``)."""
    target = Target(index=target) if isinstance(target, int) else (target or Target())
    explained = TARGETS[p.family](p, target)
    if explained is None:
        H, W = p.frame.image_hw
        return GradCam(np.zeros((H, W), np.float32), p.layer.name, -1, float("nan"), NO_BOX.copy(), -1,
                       "the model finds no detection in this image: nothing to explain (give a box and a "
                       "label to explain one)")
    cam, notice = cam_of(p, explained)
    return GradCam(cam, p.layer.name, explained.label, explained.value, explained.box, explained.index, notice)


def grad_cam(model: nn.Module, image: np.ndarray, layer: str | None = None,
             target: Target | int | None = None) -> GradCam:
    """Grad-CAM of ``target`` at ``layer`` (default: ``Probe.default_layer``) for ``image`` (H, W, 3) uint8."""
    return explain(probed_forward(model, image, layer, grad=True), target)
