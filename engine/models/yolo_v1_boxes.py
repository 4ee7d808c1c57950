"""YOLOv1 grid coding: ground truth -> cell targets and back, and predictions -> detections.

Cell parameters are ``[x_off, y_off, sqrt_w, sqrt_h]``: the centre's offset inside its cell in
[0, 1] and the square roots of width and height relative to the (square) network input. Cell
(i, j) is row i (y) and column j (x). Boxes are float xyxy in network-input pixels unless said
otherwise; ``decode_predictions`` maps them to original image pixels.

One object per cell (as the paper): when several ground-truth centres fall into one cell, the
box with the LARGER area is kept (ties: the lower index, i.e. the first) and the others are
reported in ``dropped``. Users must be told: those objects are never learned.
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms


def cells_to_xyxy(params: torch.Tensor, S: int) -> torch.Tensor:
    """(..., S, S, K, 4) [x_off, y_off, sqrt_w, sqrt_h] -> (..., S, S, K, 4) xyxy in units of the input side."""
    idx = torch.arange(S, dtype=params.dtype, device=params.device)
    col = idx.view(1, S, 1)  # column j varies along dim -2 of (S, S, K)
    row = idx.view(S, 1, 1)  # row i varies along dim -3
    cx = (col + params[..., 0]) / S
    cy = (row + params[..., 1]) / S
    w = params[..., 2] ** 2
    h = params[..., 3] ** 2
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def encode_targets(boxes: torch.Tensor, labels: torch.Tensor, S: int, input_size: int,
                   num_classes: int) -> dict[str, torch.Tensor]:
    """Ground truth of one image -> YOLOv1 cell targets.

    boxes: (K, 4) float xyxy in network-input pixels (expected inside [0, input_size]);
    labels: (K,) int64 in 0..num_classes-1.
    Returns ``obj`` (S, S) bool, ``box`` (S, S, 4) float32 [x_off, y_off, sqrt_w, sqrt_h] (0 where
    empty), ``cls`` (S, S) int64 (0 where empty), ``gt_index`` (S, S) int64 (the kept box's index
    into ``boxes``, -1 where empty), ``dropped`` (D,) int64 ascending indices of boxes that lost
    their cell to a larger box, ``degenerate`` (G,) int64 indices of boxes with width or height <= 0
    (ignored).
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if labels.numel() != boxes.shape[0]:
        raise ValueError(f"{boxes.shape[0]} boxes but {labels.numel()} labels")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.tolist()}")
    obj = torch.zeros(S, S, dtype=torch.bool)
    box = torch.zeros(S, S, 4, dtype=torch.float64)
    cls = torch.zeros(S, S, dtype=torch.int64)
    gt_index = torch.full((S, S), -1, dtype=torch.int64)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    valid = (w > 0) & (h > 0)
    dropped: list[int] = []
    # larger area first; a stable sort keeps the lower index first among equal areas
    order = torch.sort(-(w * h), stable=True).indices
    for k in order[valid[order]].tolist():
        cx = (boxes[k, 0] + boxes[k, 2]) / 2 * S / input_size  # in cell units
        cy = (boxes[k, 1] + boxes[k, 3]) / 2 * S / input_size
        j = int(cx.floor().clamp(0, S - 1))
        i = int(cy.floor().clamp(0, S - 1))
        if obj[i, j]:
            dropped.append(k)
            continue
        obj[i, j] = True
        box[i, j] = torch.stack([cx - j, cy - i, (w[k] / input_size).sqrt(), (h[k] / input_size).sqrt()])
        cls[i, j] = labels[k]
        gt_index[i, j] = k
    return {"obj": obj, "box": box.float(), "cls": cls, "gt_index": gt_index,
            "dropped": torch.tensor(sorted(dropped), dtype=torch.int64),
            "degenerate": torch.nonzero(~valid).flatten()}


def decode_targets(targets: dict[str, torch.Tensor], S: int, input_size: int) -> dict[str, torch.Tensor]:
    """Inverse of encode_targets for one image: the kept boxes, in row-major cell order.

    Returns ``boxes`` (M, 4) float32 xyxy in network-input pixels, ``labels`` (M,) int64 and
    ``gt_index`` (M,) int64 (their indices in the encoded input; -1 if unknown).
    """
    obj = targets["obj"].bool()
    xyxy = cells_to_xyxy(targets["box"].double().unsqueeze(-2), S).squeeze(-2) * input_size
    gt = targets.get("gt_index", torch.full((S, S), -1, dtype=torch.int64))
    return {"boxes": xyxy[obj].float(), "labels": targets["cls"][obj], "gt_index": gt[obj]}


def stack_targets(per_image: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batch encode_targets outputs: ``obj`` (N, S, S), ``box`` (N, S, S, 4), ``cls`` (N, S, S).

    ``dropped`` / ``degenerate`` are per image and stay out (read them before stacking).
    """
    return {k: torch.stack([t[k] for t in per_image]) for k in ("obj", "box", "cls", "gt_index")}


def class_probabilities(class_slots: torch.Tensor, logits: bool) -> torch.Tensor:
    """(..., C) class slots of the output -> probabilities (softmax when they are logits)."""
    return torch.softmax(class_slots, dim=-1) if logits else class_slots


@torch.no_grad()
def decode_predictions(pred: torch.Tensor, S: int, B: int, input_size: int,
                       scale: tuple[float, float] = (1.0, 1.0), score_threshold: float = 0.05,
                       nms_iou: float = 0.5, max_detections: int = 100, class_logits: bool = False,
                       clip: bool = True) -> dict[str, torch.Tensor]:
    """Output of one image (S, S, B*5+C) -> boxes, scores and detections in original image pixels.

    ``scale = (sx, sy)`` multiplies input-pixel x and y (sx = original width / input_size for a
    plain resize). ``class_logits``: the class slots are logits (spec.class_logits). ``clip``:
    clip boxes to the input frame before scaling.
    Returns ``boxes`` (S, S, B, 4) float xyxy (all predictors), ``conf`` (S, S, B),
    ``class_prob`` (S, S, C), ``scores`` (S, S, B, C) = class_prob * conf (the paper's
    class-specific confidences); ``pre_nms_boxes`` (M, 4), ``pre_nms_scores`` (M,),
    ``pre_nms_labels`` (M,) int64: every (predictor, class) pair with score > score_threshold;
    ``det_boxes`` (D, 4), ``det_scores`` (D,), ``det_labels`` (D,): after class-aware
    ``batched_nms`` at ``nms_iou``, highest score first, at most ``max_detections``.
    """
    b5 = B * 5
    if pred.shape != (S, S, pred.shape[-1]) or pred.shape[-1] <= b5:
        raise ValueError(f"expected (S, S, B*5+C) with S={S}, B={B}; got {tuple(pred.shape)}")
    pred = pred.float()
    per_box = pred[..., :b5].reshape(S, S, B, 5)
    boxes = cells_to_xyxy(per_box[..., :4], S) * input_size
    if clip:
        boxes = boxes.clamp(0, input_size)
    boxes = boxes * boxes.new_tensor([scale[0], scale[1], scale[0], scale[1]])
    conf = per_box[..., 4]
    class_prob = class_probabilities(pred[..., b5:], class_logits)
    scores = class_prob[:, :, None, :] * conf[..., None]
    C = class_prob.shape[-1]
    flat_scores = scores.reshape(-1)
    keep = torch.nonzero(flat_scores > score_threshold).flatten()
    pre_boxes = boxes.reshape(-1, 4)[keep // C]
    pre_scores = flat_scores[keep]
    pre_labels = keep % C
    nms_keep = batched_nms(pre_boxes, pre_scores, pre_labels, nms_iou)[:max_detections]
    return {"boxes": boxes, "conf": conf, "class_prob": class_prob, "scores": scores,
            "pre_nms_boxes": pre_boxes, "pre_nms_scores": pre_scores, "pre_nms_labels": pre_labels,
            "det_boxes": pre_boxes[nms_keep], "det_scores": pre_scores[nms_keep],
            "det_labels": pre_labels[nms_keep]}
