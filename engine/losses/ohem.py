"""Online hard example mining (Shrivastava et al., 2016): train only on the k largest losses."""

from __future__ import annotations

import torch
from torch import Tensor

from engine.losses.focal import check_reduction


def ohem_select(per_sample_loss: Tensor, k: int) -> Tensor:
    """Indices (int64, (min(k, N),)) of the k largest entries of ``per_sample_loss`` (N,), largest first.

    Selection is computed without grad; k >= N returns all N indices (sorted by loss), k <= 0 none.
    """
    if per_sample_loss.ndim != 1:
        raise ValueError(f"per_sample_loss must be 1-D (N,), got shape {tuple(per_sample_loss.shape)}")
    n = per_sample_loss.shape[0]
    k = max(0, min(int(k), n))
    with torch.no_grad():
        return torch.topk(per_sample_loss.detach(), k, sorted=True).indices


def ohem_loss(per_sample_loss: Tensor, k: int, reduction: str = "mean") -> Tensor:
    """Reduce only the k hardest of ``per_sample_loss`` (N,); gradient flows only through those.

    'mean' averages the selected losses (0 when none is selected), 'sum' adds them, 'none' returns the
    selected losses, (min(k, N),), largest first.
    """
    check_reduction(reduction)
    idx = ohem_select(per_sample_loss, k)
    chosen = per_sample_loss[idx]
    if reduction == "none":
        return chosen
    if reduction == "sum" or chosen.numel() == 0:
        return chosen.sum()
    return chosen.mean()
