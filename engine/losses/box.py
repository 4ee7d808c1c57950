"""Box regression losses on encoded deltas, torchvision's conventions (default reduction 'sum')."""

from __future__ import annotations

import torch
from torch import Tensor

from engine.losses.focal import reduce


def smooth_l1(input: Tensor, target: Tensor, beta: float = 1.0, reduction: str = "sum") -> Tensor:
    """Huber-style smooth L1: ``0.5 x^2 / beta`` for |x| < beta, else ``|x| - 0.5 beta`` (x = input - target).

    input, target: float tensors of the same shape (e.g. (N, 4) box deltas). beta == 0 is plain L1
    (as torch and torchvision treat it); beta must be >= 0. Same values as
    ``torch.nn.functional.smooth_l1_loss`` and torchvision's ``det_utils.smooth_l1_loss``.
    """
    if beta < 0:
        raise ValueError(f"invalid beta {beta}: expected >= 0")
    n = torch.abs(input - target)
    loss = n if beta == 0 else torch.where(n < beta, 0.5 * n**2 / beta, n - 0.5 * beta)
    return reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "sum") -> Tensor:
    """``|input - target|`` elementwise, then reduced; same shapes in, scalar out unless 'none'."""
    return reduce(torch.abs(input - target), reduction)


def l2_loss(input: Tensor, target: Tensor, reduction: str = "sum") -> Tensor:
    """``0.5 (input - target)^2`` elementwise (the smooth-L1 quadratic branch with beta = 1), then reduced."""
    return reduce(0.5 * (input - target) ** 2, reduction)
