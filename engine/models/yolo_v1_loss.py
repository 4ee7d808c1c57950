"""The YOLOv1 loss (Redmon et al. 2016, eq. 3), as five separately logged terms.

With 1_obj(i) = "cell i holds a ground-truth centre" and 1_obj(i, b) = "predictor b of cell i is
responsible for it", summed over the batch and divided by the batch size N:

    loss_xy    = lambda_coord * sum 1_obj(i,b) [(x - x^)^2 + (y - y^)^2]
    loss_wh    = lambda_coord * sum 1_obj(i,b) [(sqrt_w - sqrt_w^)^2 + (sqrt_h - sqrt_h^)^2]
    loss_obj   =                sum 1_obj(i,b) (conf - IoU(pred box, GT box))^2     (IoU detached)
    loss_noobj = lambda_noobj * sum (1 - 1_obj(i,b)) conf^2     (every predictor not responsible,
                                                                  the object cell's others too)
    loss_cls   = sum 1_obj(i) ...  mse: sum_c (p(c) - onehot(c))^2  (the paper)
                                   ce: cross entropy of the logits; focal: softmax focal loss
                                   (engine.losses.focal.softmax_focal_loss, no alpha, summed)

Responsible predictor: the one of the B with the highest IoU with the cell's GT box; ties go to
the lowest index. When all B IoUs are 0 (no overlap at all), the one with the smallest squared
distance in [x, y, sqrt_w, sqrt_h] (ties: lowest index); its confidence target is then 0.
Widths and heights are predicted as square roots (sigmoid), so there is no sqrt in the loss and
gradients stay finite when a predicted sqrt_w is 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.losses.focal import softmax_focal_loss
from engine.models.yolo_v1 import YoloSpec
from engine.models.yolo_v1_boxes import cells_to_xyxy

LOSS_KEYS = ("loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_cls")


def box_iou_aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of broadcast-aligned (..., 4) xyxy boxes -> (...); 0 when both boxes are empty."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=1e-12)


def _first_best(values: torch.Tensor, largest: bool) -> torch.Tensor:
    """(..., B) -> (...) int64 index of the max (or min), the lowest index among ties."""
    best = values.amax(-1, keepdim=True) if largest else values.amin(-1, keepdim=True)
    B = values.shape[-1]
    rank = torch.arange(B, 0, -1, device=values.device)  # B, B-1, ..., 1: unique, highest first
    return ((values == best) * rank).argmax(-1)


def responsible_predictors(boxes: torch.Tensor, gt: torch.Tensor, S: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the responsible predictor per cell (no gradient).

    boxes: (N, S, S, B, 4) predicted [x, y, sqrt_w, sqrt_h]; gt: (N, S, S, 4) same coding.
    Returns index (N, S, S) int64 and iou (N, S, S, B) float of each predictor with the cell's GT.
    """
    with torch.no_grad():
        boxes, gt = boxes.detach(), gt.detach()
        iou = box_iou_aligned(cells_to_xyxy(boxes, S), cells_to_xyxy(gt.unsqueeze(-2), S))
        by_iou = _first_best(iou, largest=True)
        by_dist = _first_best(((boxes - gt.unsqueeze(-2)) ** 2).sum(-1), largest=False)
        index = torch.where(iou.amax(-1) > 0, by_iou, by_dist)
    return index, iou


def yolo_v1_loss(pred: torch.Tensor, targets: dict[str, torch.Tensor], spec: YoloSpec) -> dict[str, torch.Tensor]:
    """pred (N, S, S, B*5+C) model output; targets from ``stack_targets``: obj (N, S, S) bool,
    box (N, S, S, 4) [x_off, y_off, sqrt_w, sqrt_h], cls (N, S, S) int64.

    Returns the five terms of the module docstring (scalars, each already divided by N).
    """
    N, S, B = pred.shape[0], spec.S, spec.B
    b5 = B * 5
    if pred.shape[1:] != (S, S, spec.cell_dim):
        raise ValueError(f"expected pred (N, {S}, {S}, {spec.cell_dim}), got {tuple(pred.shape)}")
    per_box = pred[..., :b5].reshape(N, S, S, B, 5)
    obj = targets["obj"].to(pred.device).bool()
    gt = targets["box"].to(pred)
    index, iou = responsible_predictors(per_box[..., :4], gt, S)
    resp = F.one_hot(index, B).bool() & obj.unsqueeze(-1)  # (N, S, S, B)
    r = per_box[resp]  # (M, 5), one row per object cell in (n, i, j) order, like gt[obj]
    g = gt[obj]  # (M, 4)
    conf_target = iou.gather(-1, index.unsqueeze(-1)).squeeze(-1)[obj]  # (M,) detached
    loss_xy = spec.lambda_coord * ((r[:, :2] - g[:, :2]) ** 2).sum()
    loss_wh = spec.lambda_coord * ((r[:, 2:4] - g[:, 2:4]) ** 2).sum()
    loss_obj = ((r[:, 4] - conf_target) ** 2).sum()
    loss_noobj = spec.lambda_noobj * (per_box[..., 4][~resp] ** 2).sum()
    cls_slots = pred[..., b5:][obj]  # (M, C)
    labels = targets["cls"].to(pred.device)[obj]
    if spec.class_loss == "mse":
        loss_cls = ((cls_slots - F.one_hot(labels, spec.num_classes).to(pred)) ** 2).sum()
    elif spec.class_loss == "ce":
        loss_cls = F.cross_entropy(cls_slots, labels, reduction="sum")
    elif spec.class_loss == "focal":
        loss_cls = softmax_focal_loss(cls_slots, labels, gamma=spec.focal_gamma, reduction="sum")
    else:
        raise ValueError(f"unknown class_loss {spec.class_loss!r}")
    terms = (loss_xy, loss_wh, loss_obj, loss_noobj, loss_cls)
    return {k: v / N for k, v in zip(LOSS_KEYS, terms)}
