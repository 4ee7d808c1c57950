"""What Grad-CAM explains, per model family: a differentiable scalar score from one probed forward.

- classification (tagger, plain classifiers): the logit of tag/class ``index`` (default: the highest);
  ``value`` is its probability (sigmoid, or softmax for multiclass taggers and plain classifiers).
- segmentation (DeepLab): the sum of class ``index``'s logits over the pixels predicted as that class
  (in the model's input frame, padding excluded); default class: the most frequent predicted class other
  than background; a class predicted nowhere explains the whole image. ``value``: its mean probability there.
- Faster R-CNN: the pre-softmax class score of detection ``index`` (detections by score, default 0 = the
  top one): the box head is run again on that detection's box (model-input frame) over the backbone
  features of the same forward, which are still in the autograd graph. Or an explicit ``box`` (xyxy,
  ORIGINAL pixels) and ``label`` (1..K): the same score for any box, e.g. a ground-truth one.
- YOLOv1: conf x class probability of the chosen detection's cell, predictor and class; with an explicit
  ``box``: the cell holding its centre, the predictor overlapping it most, class ``label``.

Labels are model labels: detection 1..K (0 = background), segmentation 0..C-1, classification 0..T-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from engine.internals.run import InternalsError, Probed
from engine.models.yolo_v1_boxes import cells_to_xyxy, class_probabilities

NO_BOX = np.full(4, np.nan, np.float32)


@dataclass(frozen=True)
class Target:
    """``index``: detection (by score) / tag / class; ``box`` (xyxy ORIGINAL px) + ``label``: detectors only."""

    index: int | None = None
    box: tuple[float, float, float, float] | None = None
    label: int | None = None


@dataclass(frozen=True)
class Explained:
    """A target resolved on a forward: ``score`` (scalar tensor, differentiable), ``label``, ``box`` (4,)
    float32 xyxy ORIGINAL px (NaN when not a box), ``index`` (-1 for an explicit box), ``value`` (the
    detection score / probability the user sees)."""

    score: torch.Tensor
    label: int
    box: np.ndarray
    index: int
    value: float


def _index(target: Target, n: int, what: str) -> int:
    k = 0 if target.index is None else int(target.index)
    if not 0 <= k < n:
        raise InternalsError(f"target {k} is out of range: the model has {n} {what} (0..{n - 1})")
    return k


def _box_target(target: Target, num_labels: int) -> tuple[torch.Tensor, int]:
    if target.label is None:
        raise InternalsError("a target box needs a label (the class to explain)")
    if not 1 <= int(target.label) <= num_labels:
        raise InternalsError(f"target label {target.label} is out of range 1..{num_labels}")
    box = torch.tensor([float(v) for v in target.box], dtype=torch.float32)
    if not torch.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise InternalsError(f"target box {list(target.box)} is not an xyxy box")
    return box, int(target.label)


def classification(p: Probed, target: Target) -> Explained:
    logits = p.outputs.float()
    k = int(logits[0].argmax()) if target.index is None else _index(target, logits.shape[1], "outputs")
    mode = getattr(getattr(p.model, "spec", None), "mode", "multiclass")
    row = logits[0].detach()
    probs = torch.sigmoid(row) if mode == "multilabel" else torch.softmax(row, 0)
    return Explained(logits[0, k], k, NO_BOX, k, float(probs[k]))


def segmentation(p: Probed, target: Target) -> Explained:
    h, w = p.frame.input_hw
    logits = p.probe.output(p.probe.trunk_name)["out"][0, :, :h, :w].float()
    c_all = logits.shape[0]
    pred = logits.detach().argmax(0)
    if target.index is None:
        counts = torch.bincount(pred.flatten(), minlength=c_all)
        fg = counts.clone()
        fg[0] = 0
        k = int(fg.argmax()) if fg.max() > 0 else int(counts.argmax())
    else:
        k = _index(target, c_all, "classes")
    region = pred == k
    if not region.any():
        region = torch.ones_like(region)
    prob = torch.softmax(logits.detach(), 0)[k][region].mean()
    return Explained(logits[k][region].sum(), k, NO_BOX, k, float(prob))


def faster_rcnn(p: Probed, target: Target) -> Explained | None:
    model, probe = p.model, p.probe
    heads = model.roi_heads
    image_sizes = probe.output("transform")[0].image_sizes
    sx, sy = p.frame.scale
    dets_in = probe.output("roi_heads")[0][0]
    if target.box is not None:
        box_o, label = _box_target(target, int(heads.box_predictor.cls_score.out_features) - 1)
        box_in = box_o / box_o.new_tensor([sx, sy, sx, sy])
        index, value = -1, math.nan
    else:
        n = len(dets_in["boxes"])
        if n == 0 and target.index is None:
            return None
        index = _index(target, n, "detections")
        box_in, label = dets_in["boxes"][index].detach(), int(dets_in["labels"][index])
        box_o, value = p.outputs[0]["boxes"][index].detach(), float(p.outputs[0]["scores"][index].detach())
    feats = probe.output(probe.trunk_name)
    like = next(iter(feats.values()))
    pooled = heads.box_roi_pool(feats, [box_in.reshape(1, 4).to(like)], image_sizes)
    logits, _ = heads.box_predictor(heads.box_head(pooled))
    if math.isnan(value):
        value = float(torch.softmax(logits.detach()[0], 0)[label])
    return Explained(logits[0, label], label, box_o.cpu().numpy().astype(np.float32).reshape(4), index, value)


def yolo(p: Probed, target: Target) -> Explained | None:
    model = p.model
    spec = model.spec
    S, B, s = spec.S, spec.B, spec.input_size
    pred = p.probe.output(p.probe.trunk_name)[0].float()  # (S, S, B*5+C)
    per_box = pred[..., :B * 5].reshape(S, S, B, 5)
    conf = per_box[..., 4]
    cls = class_probabilities(pred[..., B * 5:], spec.class_logits)
    sx, sy = p.frame.scale
    if target.box is not None:
        box_o, label = _box_target(target, cls.shape[-1])
        cx, cy = float(box_o[0] + box_o[2]) / 2 / sx, float(box_o[1] + box_o[3]) / 2 / sy
        i, j = min(S - 1, max(0, int(cy * S / s))), min(S - 1, max(0, int(cx * S / s)))
        cell = cells_to_xyxy(per_box[..., :4].detach(), S)[i, j] * s  # (B, 4) input px
        box_in = box_o / box_o.new_tensor([sx, sy, sx, sy])
        b = int(box_iou(cell.cpu(), box_in[None]).argmax())
        score = conf[i, j, b] * cls[i, j, label - 1]
        return Explained(score, label, box_o.numpy().astype(np.float32), -1, float(score.detach()))
    dets = p.outputs[0]
    n = len(dets["boxes"])
    if n == 0 and target.index is None:
        return None
    k = _index(target, n, "detections")
    c = int(dets["labels"][k]) - 1
    scores = (cls[:, :, None, :] * conf[..., None]).detach()[..., c]  # (S, S, B): the model's own numbers
    hits = torch.nonzero(scores == dets["scores"][k].to(scores))
    if len(hits) == 0:  # not bit-identical on this device: the closest one
        hits = torch.nonzero(scores == scores.flatten()[(scores - dets["scores"][k]).abs().argmin()])
    i, j, b = (int(v) for v in hits[0])
    score = conf[i, j, b] * cls[i, j, c]
    return Explained(score, c + 1, dets["boxes"][k].detach().cpu().numpy().astype(np.float32), k,
                     float(dets["scores"][k].detach()))


TARGETS = {"classification": classification, "segmentation": segmentation, "frcnn": faster_rcnn, "yolo": yolo}
