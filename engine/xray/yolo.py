"""YOLOv1 X-ray: one call on (detector, image, ground truth) -> the grid as arrays (keys: docs/xray.md).

The detector (``engine.models.yolo_v1_detector.YoloV1Detector``) runs one eval-mode forward under
``no_grad``; every module's train/eval flag is restored and nothing random runs, so the RNG state is
untouched. Cell (i, j) is row i (y), column j (x) of the S x S grid laid over the resized input;
because the resize is plain, cell edges in original pixels are ``j * W / S`` and ``i * H / S``.
Every box is float32 xyxy in ORIGINAL image pixels; labels are 1..K (as everywhere in the app).
The responsible predictor of an object cell follows the loss's rule
(``engine.models.yolo_v1_loss.responsible_predictors``) against the un-augmented ground truth.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from engine.data.tensors import image_tensor
from engine.models.yolo_v1_loss import responsible_predictors


def _gt_arrays(gt_boxes: np.ndarray | None, gt_labels: np.ndarray | None, num_classes: int
               ) -> tuple[np.ndarray, np.ndarray]:
    gt_b = np.zeros((0, 4), np.float32) if gt_boxes is None else np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    gt_l = np.zeros(0, np.int64) if gt_labels is None else np.asarray(gt_labels, np.int64).reshape(-1)
    if len(gt_b) != len(gt_l):
        raise ValueError(f"gt_boxes has {len(gt_b)} rows but gt_labels has {len(gt_l)}")
    if not np.all(np.isfinite(gt_b)):
        raise ValueError("gt_boxes has non-finite coordinates")
    if len(gt_l) and (gt_l.min() < 1 or gt_l.max() > num_classes):
        raise ValueError(f"gt_labels must be model labels 1..{num_classes}, got {sorted(set(gt_l.tolist()))}")
    return gt_b, gt_l


def _forward(detector: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, tuple[float, float]]:
    modes = {m: m.training for m in detector.modules()}
    try:
        detector.eval()
        with torch.no_grad():
            pred, scales = detector.raw([x])
    finally:
        for m, mode in modes.items():
            m.training = mode
    return pred[0].float(), scales[0]


def capture_yolo(model: nn.Module, image: np.ndarray, gt_boxes: np.ndarray | None = None,
                 gt_labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """X-ray one image through a YOLOv1 detector.

    ``image`` (H, W, 3) uint8 RGB; ``gt_boxes`` (N, 4) float xyxy original pixels; ``gt_labels`` (N,)
    model labels 1..K. Returns the ``yolo_*`` grid arrays, ``detections_pre_nms*`` / ``detections*``,
    ``gt_*``, ``image_size``, ``input_size``, ``scale`` and ``box_params`` (see docs/xray.md).
    """
    detector = getattr(model, "module", model)
    spec = detector.spec
    S, B, C, s = spec.S, spec.B, spec.num_classes, spec.input_size
    gt_b, gt_l = _gt_arrays(gt_boxes, gt_labels, C)
    device = next(detector.parameters()).device
    pred, (sx, sy) = _forward(detector, image_tensor(image).to(device))
    with torch.no_grad():
        dec = detector.decode(pred, (sx, sy))
        # the pre-NMS pairs in decode's order, with the predictor each came from, and decode's NMS
        flat = dec["scores"].reshape(-1)
        pairs = torch.nonzero(flat > spec.score_threshold).flatten()
        nms_keep = batched_nms(dec["pre_nms_boxes"], dec["pre_nms_scores"], dec["pre_nms_labels"],
                               spec.nms_iou)[:spec.max_detections]
        enc = detector.encode({"boxes": torch.from_numpy(gt_b), "labels": torch.from_numpy(gt_l)}, (sx, sy))
        per_box = pred[..., :B * 5].reshape(S, S, B, 5)
        index, _ = responsible_predictors(per_box[None, ..., :4], enc["box"][None].to(pred), S)
        responsible = F.one_hot(index[0], B).bool() & enc["obj"].to(pred.device)[..., None]

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32)

    def np64(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.int64)

    h, w = image.shape[:2]
    a: dict[str, np.ndarray] = {
        "yolo_pred": np32(pred),
        "yolo_boxes": np32(dec["boxes"]),
        "yolo_conf": np32(dec["conf"]),
        "yolo_class_prob": np32(dec["class_prob"]),
        "yolo_responsible": responsible.cpu().numpy().astype(bool),
        "yolo_dropped_gt": np64(enc["dropped"]),
        "yolo_gt_index": np64(enc["gt_index"]),
        "yolo_gt_cell": _gt_cells(gt_b, (sx, sy), S, s),
        "yolo_grid": np.asarray([S, B, C], np.int32),
        "detections_pre_nms": np32(dec["pre_nms_boxes"]).reshape(-1, 4),
        "detections_pre_nms_score": np32(dec["pre_nms_scores"]),
        "detections_pre_nms_label": np64(dec["pre_nms_labels"] + 1),
        "detections_pre_nms_predictor": np64(pairs // C),
        "detections": np32(dec["det_boxes"]).reshape(-1, 4),
        "detections_score": np32(dec["det_scores"]),
        "detections_label": np64(dec["det_labels"] + 1),
        "detections_pre_index": np64(nms_keep),
        "gt_boxes": gt_b,
        "gt_labels": gt_l,
        "image_size": np.asarray([h, w], np.int32),
        "input_size": np.asarray([s, s], np.int32),
        "scale": np.asarray([sx, sy], np.float32),
        "box_params": np.asarray([spec.score_threshold, spec.nms_iou, spec.max_detections], np.float64),
    }
    return a


def _gt_cells(gt: np.ndarray, scale: tuple[float, float], S: int, input_size: int) -> np.ndarray:
    """(N, 4) xyxy original px -> (N, 2) int32 (row, col) of each box centre's cell, computed exactly as
    the detector's ``encode`` + ``encode_targets`` do; (-1, -1) for boxes without area (ignored there)."""
    if len(gt) == 0:
        return np.zeros((0, 2), np.int32)
    sx, sy = scale
    b = (torch.from_numpy(gt) / torch.tensor([sx, sy, sx, sy], dtype=torch.float32)).double()
    col = ((b[:, 0] + b[:, 2]) / 2 * S / input_size).floor().clamp(0, S - 1)
    row = ((b[:, 1] + b[:, 3]) / 2 * S / input_size).floor().clamp(0, S - 1)
    cells = torch.stack([row, col], 1).numpy().astype(np.int32)
    cells[((b[:, 2] - b[:, 0]) <= 0).numpy() | ((b[:, 3] - b[:, 1]) <= 0).numpy()] = -1
    return cells


def summarize_yolo(a: dict[str, np.ndarray]) -> dict:
    """Counts of a YOLOv1 capture, for logs and job results."""
    S, B, C = (int(v) for v in a["yolo_grid"])
    return {"grid": S, "boxes_per_cell": B, "classes": C, "predictors": S * S * B,
            "object_cells": int(a["yolo_responsible"].any(-1).sum()), "dropped_gt": int(len(a["yolo_dropped_gt"])),
            "detections_pre_nms": int(len(a["detections_pre_nms"])), "detections": int(len(a["detections"])),
            "gt": int(len(a["gt_boxes"])), "input_size": [int(v) for v in a["input_size"]],
            "image_size": [int(v) for v in a["image_size"]]}
