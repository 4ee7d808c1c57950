"""Focal losses (Lin et al., RetinaNet, https://arxiv.org/abs/1708.02002).

``sigmoid_focal_loss`` is a drop-in for ``torchvision.ops.sigmoid_focal_loss`` (same signature, same
values); ``softmax_focal_loss`` is the multi-class form ``-alpha_t (1 - p_t)^gamma log p_t`` over a
softmax, with ``F.cross_entropy``'s target layout, ``ignore_index`` and weighted mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> None:
    """Raise ValueError unless ``reduction`` is one of 'none', 'mean', 'sum'."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"invalid reduction {reduction!r}: expected one of {', '.join(map(repr, REDUCTIONS))}")


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply 'none' | 'mean' | 'sum' to an elementwise loss."""
    check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """Binary focal loss on logits, elementwise; values equal torchvision's.

    inputs: float logits of any shape; targets: same shape, floats in [0, 1] (1 = positive).
    ``alpha`` in [0, 1] weights positives by alpha and negatives by 1 - alpha; alpha < 0 (e.g. -1)
    disables the weighting. ``gamma`` >= 0 is the exponent of ``(1 - p_t)``. Returns the loss with the
    reduction applied ('none': same shape as ``inputs``; 'mean'/'sum': a scalar).
    """
    check_reduction(reduction)
    if alpha > 1:
        raise ValueError(f"invalid alpha {alpha}: expected a value in [0, 1], or < 0 to disable the weighting")
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the same shape")
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return reduce(loss, reduction)


def softmax_focal_loss(
    logits: Tensor,
    target: Tensor,
    alpha: Tensor | float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Multi-class focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` with ``p_t = softmax(logits)[target]``.

    logits: (N, C) float, or (N, C, d1, ...) for dense prediction; target: (N,) int64 class ids, or
    (N, d1, ...); entries equal to ``ignore_index`` contribute nothing.
    alpha: None (no weighting), a float (uniform scale) or a (C,) tensor of per-class weights (alpha_t =
    alpha[target]). gamma = 0 with a (C,) alpha gives ``F.cross_entropy(weight=alpha)``.
    reduction 'mean' divides by the number of non-ignored targets, or by the sum of their alpha_t when
    alpha is a tensor (as ``F.cross_entropy`` does); an all-ignored batch gives 0 (not NaN). 'none'
    returns a loss per target element (0 where ignored), shaped like ``target``.
    """
    check_reduction(reduction)
    if gamma < 0:
        raise ValueError(f"invalid gamma {gamma}: expected >= 0")
    if logits.ndim < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, d1, ...), got shape {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: "
                         f"expected {expected}")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"target must hold integer class ids, got {target.dtype}")
    num_classes = logits.shape[1]
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    logp_t = F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    p_t = logp_t.exp()
    loss = -logp_t if gamma == 0 else -((1 - p_t).clamp(min=0) ** gamma) * logp_t
    weight: Tensor | None = None
    if isinstance(alpha, Tensor):
        if alpha.shape != (num_classes,):
            raise ValueError(f"alpha must be a ({num_classes},) tensor of class weights, got {tuple(alpha.shape)}")
        weight = alpha.to(device=logits.device, dtype=logits.dtype)[safe]
        loss = loss * weight
    elif alpha is not None:
        loss = loss * float(alpha)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    denom = torch.where(valid, weight, torch.zeros_like(weight)).sum() if weight is not None else valid.sum()
    if not bool(valid.any()):
        return loss.sum() * 0.0
    return loss.sum() / denom
