"""Re-run the model's post-processing on captured pre-NMS boxes (no model re-run).

Both functions use ``torchvision.ops.batched_nms`` exactly as torchvision's RPN (per level) and
RoI heads (per class) do, and return indices into the captured pre-NMS arrays, best first.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms


def detections_keep(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, score_thresh: float,
                    iou_thresh: float, top_k: int) -> np.ndarray:
    """(D, 4) xyxy, (D,) scores, (D,) labels of pre-NMS detections -> (K,) int64 kept indices.

    Keeps ``score > score_thresh`` (as ``RoIHeads.postprocess_detections``), then per-class NMS at
    ``iou_thresh``, then the ``top_k`` best.
    """
    scores_t = torch.as_tensor(np.asarray(scores, np.float32))
    idx = torch.where(scores_t > float(score_thresh))[0]
    keep = batched_nms(torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4)[idx], scores_t[idx],
                       torch.as_tensor(np.asarray(labels, np.int64))[idx], float(iou_thresh))
    return idx[keep[: max(int(top_k), 0)]].numpy().astype(np.int64)


def proposals_keep(boxes: np.ndarray, scores: np.ndarray, levels: np.ndarray, iou_thresh: float,
                   top_n: int) -> np.ndarray:
    """(P, 4) xyxy, (P,) objectness, (P,) FPN level of pre-NMS proposals -> (Q,) int64 kept indices
    (per-level NMS at ``iou_thresh``, then the ``top_n`` best, as ``RegionProposalNetwork.filter_proposals``)."""
    keep = batched_nms(torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4),
                       torch.as_tensor(np.asarray(scores, np.float32)),
                       torch.as_tensor(np.asarray(levels, np.int64)), float(iou_thresh))
    return keep[: max(int(top_n), 0)].numpy().astype(np.int64)
