"""Detector X-ray: one call on (model, image, ground truth) -> the Faster R-CNN pipeline as arrays.

Every box/point array is in ORIGINAL image pixels (xyxy, float32), mapped from the model's resized
frame with the transform's exact per-axis scale (see ``engine.xray.frames``). The model runs one
eval-mode forward under probes (hooks + temporary instance wrappers, see ``engine.xray.probes``);
its outputs are bit-identical to an uncaptured forward, every module's train/eval flag is restored,
and the global RNG state is left untouched. The training-side views (anchor labels, the RPN's 256
sampled anchors, the RoI heads' sampled RoIs) are computed afterwards with the model's own
``assign_targets_to_anchors`` logic, ``fg_bg_sampler`` and ``select_training_samples`` under a forked,
seeded RNG. Keys, shapes and frames are listed in docs/xray.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import boxes as box_ops

from engine.data.tensors import image_tensor
from engine.events import ArraysReady
from engine.losses.ohem import ohem_select
from engine.xray.anchors import anchor_meta
from engine.xray.frames import boxes_to_input, boxes_to_original, points_to_original, scale_xy
from engine.xray.probes import probe, rpn_candidates
from engine.xray.roi_align_points import sampling_points


def capture(model: nn.Module, image: np.ndarray, gt_boxes: np.ndarray | None = None,
            gt_labels: np.ndarray | None = None, roi_index: int | None = None, seed: int = 0,
            ) -> dict[str, np.ndarray]:
    """X-ray one image through a torchvision ``FasterRCNN``.

    ``image`` (H, W, 3) uint8 RGB; ``gt_boxes`` (N, 4) xyxy original pixels; ``gt_labels`` (N,) model
    labels 1..K (0 is background). ``roi_index`` picks the sampled RoI whose RoI Align grid is
    returned (default: the first foreground RoI, else 0). ``seed`` seeds the two samplers.
    """
    return capture_with_outputs(model, image, gt_boxes, gt_labels, roi_index, seed)[0]


def capture_with_outputs(model: nn.Module, image: np.ndarray, gt_boxes: np.ndarray | None = None,
                         gt_labels: np.ndarray | None = None, roi_index: int | None = None, seed: int = 0,
                         ) -> tuple[dict[str, np.ndarray], list[dict[str, torch.Tensor]]]:
    """``capture`` plus the model's own return value of the probed forward (for checks)."""
    gt_b = np.zeros((0, 4), np.float32) if gt_boxes is None else np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    gt_l = np.zeros(0, np.int64) if gt_labels is None else np.asarray(gt_labels, np.int64).reshape(-1)
    if len(gt_b) != len(gt_l):
        raise ValueError(f"gt_boxes has {len(gt_b)} rows but gt_labels has {len(gt_l)}")
    if not np.all(np.isfinite(gt_b)):
        raise ValueError("gt_boxes has non-finite coordinates")
    device = next(model.parameters()).device
    x = image_tensor(image).to(device)
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad(), probe(model) as rec:
            outputs = model([x])
    finally:
        for m, mode in modes.items():
            m.training = mode
    with torch.no_grad():
        arrays = _assemble(model, rec, image.shape[:2], torch.as_tensor(gt_b, device=device),
                           torch.as_tensor(gt_l, device=device), roi_index, seed)
    return arrays, outputs


def _assemble(model: nn.Module, rec: dict, image_hw: tuple[int, int], gt: torch.Tensor, gt_labels: torch.Tensor,
              roi_index: int | None, seed: int) -> dict[str, np.ndarray]:
    rpn, heads = model.rpn, model.roi_heads
    image_list = rec["image_list"]
    in_hw = tuple(int(v) for v in image_list.image_sizes[0])
    pad_hw = tuple(int(v) for v in image_list.tensors.shape[-2:])
    image_hw = (int(image_hw[0]), int(image_hw[1]))

    def orig(b: torch.Tensor) -> np.ndarray:
        return boxes_to_original(b, in_hw, image_hw)

    feats = rec["features"]
    keys = list(feats.keys())
    grids = [tuple(int(v) for v in f.shape[-2:]) for f in feats.values()]
    ag = rpn.anchor_generator
    a: dict[str, np.ndarray] = {}
    anchors_in = rec["anchors"][0]
    a["anchors"] = orig(anchors_in)
    a.update(anchor_meta(ag.sizes, ag.aspect_ratios, grids))
    a["level_grid"] = np.asarray(grids, np.int32).reshape(-1, 2)
    a["level_stride"] = np.asarray([(pad_hw[0] // g[0], pad_hw[1] // g[1]) for g in grids], np.int32).reshape(-1, 2)

    # RPN: objectness per anchor, proposals before/after NMS (eval-mode top-n)
    _, obj_logits, _, n_per_level = rec["rpn_args"]
    a["objectness"] = torch.sigmoid(obj_logits.reshape(-1)).cpu().numpy().astype(np.float32)
    c = rec["rpn"]
    a["proposals_pre_nms"] = orig(c["boxes"])
    a["proposals_pre_nms_score"] = c["scores"].cpu().numpy()
    a["proposals_pre_nms_level"] = c["levels"].cpu().numpy().astype(np.int32)
    a["proposals_pre_nms_anchor"] = c["anchor"].cpu().numpy().astype(np.int64)
    keep = c["keep"]
    a["proposals"] = orig(c["boxes"][keep])
    a["proposals_score"] = c["post_scores"].cpu().numpy()
    a["proposals_level"] = c["levels"][keep].cpu().numpy().astype(np.int32)
    a["proposals_pre_index"] = keep.cpu().numpy().astype(np.int64)

    # Detections before/after NMS
    d = rec["det"]
    k = d["keep"]
    a["detections_pre_nms"] = orig(d["boxes"])
    a["detections_pre_nms_score"] = d["scores"].cpu().numpy()
    a["detections_pre_nms_label"] = d["labels"].cpu().numpy().astype(np.int64)
    a["detections_pre_nms_proposal"] = d["proposal"].cpu().numpy().astype(np.int64)
    a["detections"] = orig(d["boxes"][k])
    a["detections_score"] = d["scores"][k].cpu().numpy()
    a["detections_label"] = d["labels"][k].cpu().numpy().astype(np.int64)
    a["detections_pre_index"] = k.cpu().numpy().astype(np.int64)

    # Training view: anchor labels + RPN sample, sampled RoIs, all against GT in the model frame
    gt_in = boxes_to_input(gt, image_hw, in_hw)
    target = {"boxes": gt_in, "labels": gt_labels.to(torch.int64)}
    train_props = rpn_train_proposals(rpn, rec, in_hw)
    dev = anchors_in.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        _seed(dev, seed)
        label, matched, iou = _anchor_labels(rpn, anchors_in, gt_in)
        pos, neg = rpn.fg_bg_sampler([label])
        rois, roi_matched, roi_label, roi_targets = heads.select_training_samples([train_props.clone()], [target])
    a["anchor_label"] = label.cpu().numpy().astype(np.int8)
    a["anchor_matched_gt"] = matched.cpu().numpy().astype(np.int32)
    a["anchor_iou"] = iou.cpu().numpy().astype(np.float32)
    a["anchor_sampled"] = (pos[0] | neg[0]).bool().cpu().numpy()
    a.update(_loss_option_arrays(rpn, heads, obj_logits.reshape(-1), label, feats, rois, roi_label, roi_targets,
                                 image_list.image_sizes))
    rois, roi_label, roi_matched = rois[0], roi_label[0], roi_matched[0]
    a["rois"] = orig(rois)
    a["roi_label"] = roi_label.cpu().numpy().astype(np.int64)
    a["roi_matched_gt"] = np.where(a["roi_label"] > 0, roi_matched.cpu().numpy(), -1).astype(np.int32)
    a["roi_iou"] = (box_ops.box_iou(rois, gt_in).max(1).values if len(gt_in) else torch.zeros(len(rois))
                    ).cpu().numpy().astype(np.float32)
    a.update(_roi_levels(heads.box_roi_pool, feats, keys, rois, image_list.image_sizes, in_hw, image_hw,
                         roi_index, a["roi_label"]))

    a["gt_boxes"] = gt.cpu().numpy().astype(np.float32).reshape(-1, 4)
    a["gt_labels"] = gt_labels.cpu().numpy().astype(np.int64)
    a["image_size"] = np.asarray(image_hw, np.int32)
    a["input_size"] = np.asarray(in_hw, np.int32)
    a["padded_size"] = np.asarray(pad_hw, np.int32)
    a["scale"] = scale_xy(in_hw, image_hw).numpy()
    a["rpn_params"] = np.asarray([rpn.nms_thresh, rpn.post_nms_top_n(), rpn.pre_nms_top_n(),
                                  rpn.proposal_matcher.high_threshold, rpn.proposal_matcher.low_threshold],
                                 np.float64)
    a["box_params"] = np.asarray([heads.score_thresh, heads.nms_thresh, heads.detections_per_img], np.float64)
    a["num_anchors_per_level"] = np.asarray(n_per_level, np.int64)
    return a


def _loss_option_arrays(rpn: nn.Module, heads: nn.Module, logits: torch.Tensor, label: torch.Tensor, feats: dict,
                        rois: list[torch.Tensor], roi_label: list[torch.Tensor], roi_targets: list[torch.Tensor],
                        image_sizes: list) -> dict[str, np.ndarray]:
    """What the model's loss options do to the sample (``engine.models.frcnn_heads``): a focal RPN puts every
    labelled anchor in the loss (``anchor_sampled``) with a weight (``anchor_weights`` (A,)); OHEM scores every
    RoI (the heads' ``rois`` are then all candidates: ``ohem_loss`` (R,)) and keeps the hardest (``ohem_kept``)."""
    out: dict[str, np.ndarray] = {}
    rpn_options, roi_options = getattr(rpn, "options", None), getattr(heads, "options", None)
    if rpn_options is not None and rpn_options.rpn_loss == "focal":
        out["anchor_sampled"] = (label >= 0).cpu().numpy()
        out["anchor_weights"] = rpn.anchor_weights(logits, label).cpu().numpy().astype(np.float32)
    if roi_options is not None and roi_options.roi_loss == "ohem":
        loss = heads.ohem_losses(feats, rois, image_sizes, roi_label, roi_targets)[0]
        out["ohem_loss"] = loss.cpu().numpy().astype(np.float32)
        out["ohem_kept"] = ohem_select(loss, roi_options.ohem_k).cpu().numpy().astype(np.int64)
    return out


def _seed(device: torch.device, seed: int) -> None:
    """Seed only the generators that fork_rng restores (CPU, and the model's CUDA device)."""
    torch.random.default_generator.manual_seed(int(seed))
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(int(seed))


def rpn_train_proposals(rpn: nn.Module, rec: dict, in_hw: tuple[int, int]) -> torch.Tensor:
    """Post-NMS proposals (model frame) with the RPN's TRAINING top-n, from the recorded forward."""

    props, obj, shapes, n_per_level = rec["rpn_args"]
    pre, post = rpn._pre_nms_top_n["training"], rpn._post_nms_top_n["training"]
    c = rpn_candidates(rpn, props, obj, shapes[0], n_per_level, pre, post)
    return c["boxes"][c["keep"]]


def _anchor_labels(rpn: nn.Module, anchors: torch.Tensor, gt: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RPN labels (A,) float32 1 fg / 0 bg / -1 ignored, best GT index (A,) (-1 without GT), max IoU (A,)."""
    if gt.numel() == 0:
        n = anchors.shape[0]
        return (torch.zeros(n, device=anchors.device), torch.full((n,), -1, dtype=torch.int64, device=anchors.device),
                torch.zeros(n, device=anchors.device))
    quality = rpn.box_similarity(gt, anchors)
    matched = rpn.proposal_matcher(quality)
    label = (matched >= 0).to(torch.float32)
    label[matched == rpn.proposal_matcher.BELOW_LOW_THRESHOLD] = 0.0
    label[matched == rpn.proposal_matcher.BETWEEN_THRESHOLDS] = -1.0
    best_iou, best_gt = quality.max(0)
    return label, best_gt, best_iou


def _roi_levels(pool: nn.Module, feats: dict, keys: list[str], rois: torch.Tensor, image_sizes: list,
                in_hw: tuple[int, int], image_hw: tuple[int, int], roi_index: int | None,
                roi_label: np.ndarray) -> dict[str, np.ndarray]:
    """FPN level of each RoI (index into the feature maps, like ``anchor_level``) by the pooler's
    LevelMapper, the pooler's scale per level, and the RoI Align sampling points of one RoI."""
    from torchvision.ops.poolers import _filter_input, _setup_scales

    names = list(getattr(pool, "featmap_names", keys))
    filtered = [k for k in keys if k in names]
    scales, mapper = pool.scales, pool.map_levels
    if scales is None or mapper is None:
        scales, mapper = _setup_scales(_filter_input(feats, names), image_sizes, pool.canonical_scale,
                                       pool.canonical_level)
    pool_scales = np.full(len(keys), np.nan, np.float32)
    for i, k in enumerate(filtered):
        pool_scales[keys.index(k)] = scales[i]
    if len(filtered) == 1 or len(rois) == 0:
        lvl = torch.zeros(len(rois), dtype=torch.int64)
    else:
        lvl = mapper([rois])
    to_key = np.asarray([keys.index(k) for k in filtered], np.int32)
    roi_level = to_key[lvl.cpu().numpy()] if len(rois) else np.zeros(0, np.int32)
    out_h, out_w = (int(v) for v in pool.output_size)
    ratio = int(pool.sampling_ratio)
    aligned = bool(getattr(pool, "aligned", False))  # torchvision's MultiScaleRoIAlign: always False
    if roi_index is None:
        fg = np.flatnonzero(roi_label > 0)
        roi_index = int(fg[0]) if len(fg) else 0
    if len(rois) == 0:
        points, roi_index = np.zeros((0, 2), np.float32), -1
    else:
        if not 0 <= roi_index < len(rois):
            raise ValueError(f"roi index {roi_index} out of range: the capture has {len(rois)} sampled RoIs")
        pts = sampling_points(rois[roi_index].cpu().numpy(), float(pool_scales[roi_level[roi_index]]),
                              (out_h, out_w), ratio, aligned)
        points = points_to_original(torch.as_tensor(pts, dtype=torch.float32), in_hw, image_hw)
    return {"roi_level": roi_level.astype(np.int32), "roi_pool_scales": pool_scales,
            "roi_pool_params": np.asarray([out_h, out_w, ratio, int(aligned)], np.int32),
            "roi_index": np.asarray(roi_index, np.int64), "roi_sampling_points": points.astype(np.float32)}


# -- the typed capture (what crosses from the engine to the GUI and to .npz files) -------------------------
KEYS: tuple[str, ...] = (
    "anchors",
    "anchor_level",
    "anchor_size",
    "anchor_ratio",
    "anchor_label",
    "anchor_matched_gt",
    "anchor_iou",
    "anchor_sampled",
    "objectness",
    "level_grid",
    "level_stride",
    "level_anchors",
    "level_start",
    "num_anchors_per_level",
    "proposals_pre_nms",
    "proposals_pre_nms_score",
    "proposals_pre_nms_level",
    "proposals_pre_nms_anchor",
    "proposals",
    "proposals_score",
    "proposals_level",
    "proposals_pre_index",
    "rois",
    "roi_label",
    "roi_matched_gt",
    "roi_iou",
    "roi_level",
    "roi_index",
    "roi_sampling_points",
    "roi_pool_scales",
    "roi_pool_params",
    "detections_pre_nms",
    "detections_pre_nms_score",
    "detections_pre_nms_label",
    "detections_pre_nms_proposal",
    "detections",
    "detections_score",
    "detections_label",
    "detections_pre_index",
    "gt_boxes",
    "gt_labels",
    "image_size",
    "input_size",
    "padded_size",
    "scale",
    "rpn_params",
    "box_params",
)
"""Every array key of a capture, as documented in docs/xray.md (the npz also holds ``meta_json``)."""

OPTIONAL_KEYS: tuple[str, ...] = (
    "anchor_weights",  # focal RPN: per-anchor focal weight (A,) float32
    "ohem_loss",  # OHEM RoI heads: loss of every candidate RoI (R,) float32
    "ohem_kept",  # OHEM RoI heads: indices into rois of the kept RoIs (k,) int64, hardest first
)
"""Keys present only when the model's loss options produce them (docs/xray.md, 'Loss options')."""


@dataclass(frozen=True)
class XrayCapture:
    """One X-ray capture: the documented arrays (original image pixels) and its meta.

    ``arrays`` holds exactly ``KEYS`` (shapes and dtypes: docs/xray.md); ``meta``: project, image_id,
    image_path, checkpoint, run_id, step, epoch, label_names, spec, notice, live. ``capture[key]`` reads
    an array. ``to_npz``/``from_npz`` keep the documented npz layout (arrays + ``meta_json``);
    ``to_event``/``from_event`` carry it to the GUI as ``ArraysReady(kind="xray")``.
    """

    arrays: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [k for k in KEYS if k not in self.arrays]
        if missing:
            raise ValueError(f"X-ray capture lacks {', '.join(missing)}")

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    @property
    def image_id(self) -> int | None:
        v = self.meta.get("image_id")
        return None if v is None else int(v)

    @property
    def live(self) -> bool:
        return bool(self.meta.get("live"))

    @property
    def label_names(self) -> list[str]:
        return list(self.meta.get("label_names") or [])

    def to_npz_arrays(self) -> dict[str, np.ndarray]:
        """The npz content: the arrays plus ``meta_json`` (a 0-d str array, no pickle needed)."""
        return {**self.arrays, "meta_json": np.array(json.dumps(self.meta, default=_jsonable))}

    def to_npz(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez_compressed(path, **self.to_npz_arrays())
        return path

    @staticmethod
    def from_npz(path: str | Path) -> XrayCapture:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta_json"}
            meta = json.loads(str(z["meta_json"])) if "meta_json" in z.files else {}
        return XrayCapture(arrays, meta)

    def to_event(self) -> ArraysReady:
        return ArraysReady(kind="xray", arrays=self.arrays, meta=self.meta)

    @staticmethod
    def from_event(event: ArraysReady) -> XrayCapture:
        if event.kind != "xray":
            raise ValueError(f"not an X-ray capture: {event.kind!r}")
        return XrayCapture(dict(event.arrays), dict(event.meta))


def _jsonable(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
