"""Weight regularisation: L2 through the optimiser's weight decay, L1 as an explicit loss term.

Only weights of convolutions and linear layers (tensors with 2+ dims) are regularised; biases and
normalisation parameters are left alone, as in torchvision's reference scripts.
"""

from __future__ import annotations

import torch
from torch import nn


def regularised_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights with 2+ dims, everything else) among trainable parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return decay, no_decay


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimiser groups: L2 ``weight_decay`` on weights, none on biases and norm parameters."""
    decay, no_decay = regularised_parameters(model)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def l1_penalty(model: nn.Module, coef: float) -> torch.Tensor:
    """``coef * sum(|w|)`` over regularised weights: a scalar tensor (reported as ``loss_l1``)."""
    decay, _ = regularised_parameters(model)
    if not decay:
        return torch.zeros(())
    return coef * torch.stack([p.abs().sum() for p in decay]).sum()
