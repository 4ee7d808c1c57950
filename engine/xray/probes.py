"""Probes on a torchvision Faster R-CNN: record internals of one eval forward without changing it.

``probe(model)`` is a context manager that registers forward hooks (transform, backbone, anchor
generator) and wraps two methods ON THE INSTANCE (``rpn.filter_proposals``,
``roi_heads.postprocess_detections``): each wrapper calls the original, records its inputs, and
returns the original's result unchanged. Everything is removed on exit. Loss functions are never
touched. The pre-NMS sets are re-derived from the recorded inputs with the same torchvision ops the
model uses and checked against the model's own post-NMS output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torchvision.ops import boxes as box_ops


class CaptureMismatch(RuntimeError):
    """The model's post-processing differs from torchvision's; the capture would misreport it."""


@contextmanager
def _wrapped(obj: Any, name: str, make: Callable[[Callable], Callable]) -> Iterator[None]:
    had_own = name in vars(obj)
    own = vars(obj).get(name)
    setattr(obj, name, make(getattr(obj, name)))
    try:
        yield
    finally:
        if had_own:
            setattr(obj, name, own)
        else:
            delattr(obj, name)


@contextmanager
def _hook(module: nn.Module, fn: Callable) -> Iterator[None]:
    handle = module.register_forward_hook(fn)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def probe(model: nn.Module) -> Iterator[dict[str, Any]]:
    """Record what one forward of ``model`` (single image, eval mode) computes. Yields the record dict:
    ``image_list``, ``features``, ``anchors`` (model frame), ``rpn`` (pre/post-NMS proposals),
    ``det`` (pre/post-NMS detections)."""
    rec: dict[str, Any] = {}
    rpn, heads = model.rpn, model.roi_heads

    def filter_wrapper(orig: Callable) -> Callable:
        def filter_proposals(proposals: torch.Tensor, objectness: torch.Tensor, image_shapes: list,
                             num_anchors_per_level: list[int]) -> Any:
            out = orig(proposals, objectness, image_shapes, num_anchors_per_level)
            rec["rpn_args"] = (proposals.detach(), objectness.detach(), list(image_shapes),
                               list(num_anchors_per_level))
            rec["rpn"] = rpn_candidates(rpn, proposals, objectness, image_shapes[0], num_anchors_per_level,
                                        rpn.pre_nms_top_n(), rpn.post_nms_top_n())
            c = rec["rpn"]
            if not torch.equal(c["boxes"][c["keep"]], out[0][0]):
                raise CaptureMismatch("the model's RPN filter_proposals differs from torchvision's; "
                                      "X-ray cannot report its pre-NMS proposals faithfully")
            rec["rpn"]["post_scores"] = out[1][0].detach()
            return out
        return filter_proposals

    def post_wrapper(orig: Callable) -> Callable:
        def postprocess_detections(class_logits: torch.Tensor, box_regression: torch.Tensor,
                                   proposals: list[torch.Tensor], image_shapes: list) -> Any:
            out = orig(class_logits, box_regression, proposals, image_shapes)
            d = detection_candidates(heads, class_logits, box_regression, proposals[0], image_shapes[0])
            k = d["keep"]
            if not (torch.equal(d["boxes"][k], out[0][0]) and torch.equal(d["scores"][k], out[1][0])
                    and torch.equal(d["labels"][k], out[2][0])):
                raise CaptureMismatch("the model's postprocess_detections differs from torchvision's; "
                                      "X-ray cannot report its pre-NMS detections faithfully")
            rec["det"] = d
            return out
        return postprocess_detections

    def keep_output(key: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            rec[key] = output
        return hook

    with ExitStack() as stack:
        stack.enter_context(_hook(model.transform, keep_output("transform")))
        stack.enter_context(_hook(model.backbone, keep_output("features")))
        stack.enter_context(_hook(rpn.anchor_generator, keep_output("anchors")))
        stack.enter_context(_wrapped(rpn, "filter_proposals", filter_wrapper))
        stack.enter_context(_wrapped(heads, "postprocess_detections", post_wrapper))
        yield rec
    if "transform" in rec:
        rec["image_list"] = rec.pop("transform")[0]


def rpn_candidates(rpn: nn.Module, proposals: torch.Tensor, objectness: torch.Tensor, image_shape: tuple[int, int],
                   num_anchors_per_level: list[int], pre_nms_top_n: int, post_nms_top_n: int) -> dict:
    """Replicates ``RegionProposalNetwork.filter_proposals`` for image 0 up to NMS, with explicit top-n.

    ``proposals`` (1, A, 4) decoded boxes (model frame), ``objectness`` logits (A, 1) or (1, A).
    Returns ``boxes`` (P, 4), ``scores`` (P,) sigmoid, ``levels`` (P,) int64, ``anchor`` (P,) int64 index
    of the source anchor, and ``keep`` (Q,) int64: the RPN's NMS result (post-NMS = boxes[keep]).
    """
    objectness = objectness.detach().reshape(proposals.shape[0], -1)[:1]
    device = proposals.device
    levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=device)
                        for i, n in enumerate(num_anchors_per_level)]).reshape(1, -1)
    idx, offset = [], 0
    for ob in objectness.split(num_anchors_per_level, 1):
        k = min(int(pre_nms_top_n), ob.shape[1])
        _, top = ob.topk(k, dim=1)
        idx.append(top + offset)
        offset += ob.shape[1]
    top_n_idx = torch.cat(idx, dim=1)
    batch_idx = torch.arange(1, device=device)[:, None]
    scores = torch.sigmoid(objectness[batch_idx, top_n_idx])[0]
    lvl = levels[batch_idx, top_n_idx][0]
    boxes = proposals.detach()[:1][batch_idx, top_n_idx][0]
    anchor = top_n_idx[0]
    boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
    keep = box_ops.remove_small_boxes(boxes, rpn.min_size)
    boxes, scores, lvl, anchor = boxes[keep], scores[keep], lvl[keep], anchor[keep]
    keep = torch.where(scores >= rpn.score_thresh)[0]
    boxes, scores, lvl, anchor = boxes[keep], scores[keep], lvl[keep], anchor[keep]
    keep = box_ops.batched_nms(boxes, scores, lvl, rpn.nms_thresh)[: int(post_nms_top_n)]
    return {"boxes": boxes, "scores": scores, "levels": lvl, "anchor": anchor, "keep": keep}


def detection_candidates(heads: nn.Module, class_logits: torch.Tensor, box_regression: torch.Tensor,
                         proposals: torch.Tensor, image_shape: tuple[int, int]) -> dict:
    """Replicates ``RoIHeads.postprocess_detections`` for one image up to NMS.

    Returns ``boxes`` (D, 4) model frame, ``scores`` (D,), ``labels`` (D,) int64 (1..K), ``proposal`` (D,)
    int64 index of the source proposal, and ``keep`` (K,) int64 (post-NMS = boxes[keep]).
    """
    num_classes = class_logits.shape[-1]
    boxes = heads.box_coder.decode(box_regression.detach(), [proposals])
    scores = F.softmax(class_logits.detach(), -1)
    boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
    labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
    source = torch.arange(scores.shape[0], device=boxes.device).view(-1, 1).expand_as(scores)
    boxes, scores, labels, source = boxes[:, 1:], scores[:, 1:], labels[:, 1:], source[:, 1:]
    boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
    labels, source = labels.reshape(-1), source.reshape(-1)
    inds = torch.where(scores > heads.score_thresh)[0]
    boxes, scores, labels, source = boxes[inds], scores[inds], labels[inds], source[inds]
    keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    boxes, scores, labels, source = boxes[keep], scores[keep], labels[keep], source[keep]
    keep = box_ops.batched_nms(boxes, scores, labels, heads.nms_thresh)[: heads.detections_per_img]
    return {"boxes": boxes, "scores": scores, "labels": labels, "proposal": source, "keep": keep}
