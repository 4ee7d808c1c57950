"""The X-ray overlay layers: capture arrays + filter settings -> one graphics item per layer.

Qt-side model of the X-ray panel (no widgets): it owns a ``BoxLayer``/``PointLayer`` per layer, turns
a capture (``engine.xray.capture`` arrays, original image pixels) and the current filters into their
data, re-runs NMS on the captured pre-NMS boxes for the sliders (``engine.xray.nms``, no model run),
and answers clicks and hovers with numbers. All coordinates are image pixels = scene coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsScene

from engine.xray.anchors import anchors_at, box_iou, smallest_box_at
from engine.xray.nms import detections_keep, proposals_keep
from engine.xray.roi_align_points import roi_bins, roi_points
from gui.canvas.overlays import BoxLayer, OverlayLayer, PointLayer
from gui.canvas.view import Z_OVERLAYS

ANCHOR_LEGEND = ("ignored", "background", "foreground")  # group = label + 1
LABEL_FILTERS = ("all", "foreground", "background", "ignored")


@dataclass(frozen=True)
class LayerSpec:
    name: str
    title: str
    colors: tuple[str, ...]  # one per legend entry (one entry: single-colour layer)
    legend: tuple[str, ...] = ()
    visible: bool = False
    width: float = 1.0
    dashed: bool = False
    alpha: int = 255


LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec("gt", "ground truth", ("#ffffff",), visible=True, width=2),
    LayerSpec("anchors", "anchors", ("#ffa500", "#5a8cff", "#00e65a"), ANCHOR_LEGEND, alpha=110),
    LayerSpec("sampled", "sampled anchors (RPN loss)", ("#ff3c3c", "#00e65a"), ("negative", "positive")),
    LayerSpec("proposals_pre_nms", "proposals before NMS", ("#b4b4b4",), dashed=True, alpha=140),
    LayerSpec("proposals", "proposals (top N)", ("#ffd700",), visible=True),
    LayerSpec("rois", "sampled RoIs", ("#8c8c8c", "#ff8c00"), ("background", "foreground")),
    LayerSpec("detections_pre_nms", "detections before NMS", ("#ff80ff",), dashed=True, alpha=160),
    LayerSpec("detections", "detections (after NMS)", ("#ff2020",), visible=True, width=2),
    LayerSpec("click_anchors", "anchors at clicked pixel", ("#00ffff",), visible=True, width=2),
    LayerSpec("roi_grid", "RoI Align grid of clicked RoI", ("#ff5050",), visible=True),
)


@dataclass
class Filters:
    level: int = -1  # -1 = all levels
    label: str = "all"  # one of LABEL_FILTERS
    top_n: int = 100  # proposals shown
    score_thresh: float = 0.05  # detections
    det_iou: float = 0.5
    prop_iou: float = 0.7
    extra: dict = field(default_factory=dict)


class XrayLayers:
    """Items for every layer (``items[name]``; 'roi_grid' also has ``items['roi_bins']``)."""

    def __init__(self) -> None:
        self.items: dict[str, OverlayLayer] = {}
        for i, spec in enumerate(LAYERS):
            z = Z_OVERLAYS + i
            if spec.name == "roi_grid":
                self.items["roi_bins"] = BoxLayer("roi_bins", spec.colors[0], z, width=1, alpha=160)
                self.items[spec.name] = PointLayer(spec.name, spec.colors[0], z + 0.5, size=4)
            else:
                layer = BoxLayer(spec.name, spec.colors[0], z, spec.width, spec.dashed, spec.alpha)
                if len(spec.colors) > 1:
                    layer.set_palette(spec.colors)
                self.items[spec.name] = layer
            self.set_visible(spec.name, spec.visible)
        self.arrays: dict[str, np.ndarray] | None = None
        self.meta: dict = {}
        self.filters = Filters()
        self.selected_roi = -1
        self.clicked_anchors = np.zeros(0, np.int64)
        self._prop_keep: tuple[float, np.ndarray] | None = None
        self.shown: dict[str, np.ndarray] = {}  # layer -> indices into the capture array it shows
        self._scene: QGraphicsScene | None = None

    # -- scene and appearance ------------------------------------------------------------------
    def attach(self, scene: QGraphicsScene) -> None:
        """Add every layer item to ``scene`` (removing them from a previous one)."""
        for item in self.items.values():
            if item.scene() is not None:
                item.scene().removeItem(item)
            scene.addItem(item)
        self._scene = scene

    def set_visible(self, name: str, on: bool) -> None:
        self.items[name].setVisible(on)
        if name == "roi_grid":
            self.items["roi_bins"].setVisible(on)

    def set_color(self, name: str, color: QColor | str, entry: int = 0) -> None:
        """Colour of a layer (``entry``: which legend entry of a multi-colour layer)."""
        item = self.items[name]
        if isinstance(item, BoxLayer) and item._palette:
            palette = [QColor(c) for c in item._palette]
            palette[entry] = QColor(color)
            item.set_palette(palette)
        else:
            item.set_color(color)
        if name == "roi_grid":
            self.items["roi_bins"].set_color(color)

    def label_name(self, label: int) -> str:
        names = self.meta.get("label_names") or []
        return names[label] if 0 <= label < len(names) else f"class {label}"

    # -- data -----------------------------------------------------------------------------------
    def set_capture(self, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        """Show a capture; keeps the user's filters, resets slider-driven ones to the model's settings."""
        self.arrays, self.meta = arrays, dict(meta or {})
        score_t, nms_t, _ = (float(v) for v in arrays["box_params"])
        self.filters.score_thresh, self.filters.det_iou = score_t, nms_t
        self.filters.prop_iou = float(arrays["rpn_params"][0])
        self.filters.top_n = min(self.filters.top_n, len(arrays["proposals"])) or len(arrays["proposals"])
        if self.filters.level >= len(arrays["level_grid"]):
            self.filters.level = -1
        self._prop_keep = None
        self.selected_roi, self.clicked_anchors = -1, np.zeros(0, np.int64)
        self.refresh()

    def clear(self) -> None:
        self.arrays, self.meta = None, {}
        for item in self.items.values():
            if isinstance(item, BoxLayer):
                item.set_boxes(np.zeros((0, 4)))
            else:
                item.set_points(np.zeros((0, 2)))

    def proposal_keep(self) -> np.ndarray:
        """Indices into proposals_pre_nms after per-level NMS at the slider's IoU (cached per IoU)."""
        a = self.arrays
        if self._prop_keep is None or self._prop_keep[0] != self.filters.prop_iou:
            keep = proposals_keep(a["proposals_pre_nms"], a["proposals_pre_nms_score"], a["proposals_pre_nms_level"],
                                  self.filters.prop_iou, int(a["rpn_params"][1]))
            self._prop_keep = (self.filters.prop_iou, keep)
        return self._prop_keep[1]

    def detection_keep(self) -> np.ndarray:
        a, f = self.arrays, self.filters
        return detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"], a["detections_pre_nms_label"],
                               f.score_thresh, f.det_iou, int(a["box_params"][2]))

    def _level_mask(self, levels: np.ndarray) -> np.ndarray:
        return np.ones(len(levels), bool) if self.filters.level < 0 else levels == self.filters.level

    def anchor_mask(self) -> np.ndarray:
        a = self.arrays
        mask = self._level_mask(a["anchor_level"])
        want = {"foreground": 1, "background": 0, "ignored": -1}.get(self.filters.label)
        if want is not None:
            mask &= a["anchor_label"] == want
        return mask

    def refresh(self) -> None:
        """Recompute every layer's data from the capture and the filters."""
        a = self.arrays
        if a is None:
            return
        it = self.items
        it["gt"].set_boxes(a["gt_boxes"], labels=[self.label_name(int(v)) for v in a["gt_labels"]])
        m = self.anchor_mask()
        it["anchors"].set_boxes(a["anchors"][m], a["anchor_label"][m].astype(np.int64) + 1)
        s = m & a["anchor_sampled"]
        it["sampled"].set_boxes(a["anchors"][s], (a["anchor_label"][s] == 1).astype(np.int64))
        pm = self._level_mask(a["proposals_pre_nms_level"])
        it["proposals_pre_nms"].set_boxes(a["proposals_pre_nms"][pm])
        keep = self.proposal_keep()
        keep = keep[self._level_mask(a["proposals_pre_nms_level"][keep])][: self.filters.top_n]
        it["proposals"].set_boxes(a["proposals_pre_nms"][keep],
                                  labels=[f"{v:.2f}" for v in a["proposals_pre_nms_score"][keep]])
        self.shown["proposals"] = keep
        rm = self._level_mask(a["roi_level"])
        it["rois"].set_boxes(a["rois"][rm], (a["roi_label"][rm] > 0).astype(np.int64))
        dm = a["detections_pre_nms_score"] > self.filters.score_thresh
        it["detections_pre_nms"].set_boxes(a["detections_pre_nms"][dm])
        k = self.detection_keep()
        self.shown["detections"] = k
        it["detections"].set_boxes(a["detections_pre_nms"][k], labels=[
            f"{self.label_name(int(lab))} {sc:.2f}"
            for lab, sc in zip(a["detections_pre_nms_label"][k], a["detections_pre_nms_score"][k])])
        self._show_clicked()

    def counts(self) -> dict[str, int]:
        """Boxes/points currently in each layer."""
        return {n: len(i.boxes()) if isinstance(i, BoxLayer) else len(i.points()) for n, i in self.items.items()}

    # -- clicks and hovers ----------------------------------------------------------------------
    def click_anchors(self, x: float, y: float) -> list[dict]:
        """Select the anchors centred nearest (x, y) on every level; one dict per anchor with its level,
        size, ratio, label, objectness and IoU with every GT box (``iou``: list)."""
        a = self.arrays
        if a is None:
            return []
        idx = anchors_at(a, x, y)
        if self.filters.level >= 0:
            idx = idx[a["anchor_level"][idx] == self.filters.level]
        self.clicked_anchors = idx
        self.selected_roi = -1
        self._show_clicked()
        iou = box_iou(a["anchors"][idx], a["gt_boxes"]) if len(a["gt_boxes"]) else np.zeros((len(idx), 0))
        strides = a["level_stride"]
        return [{"index": int(i), "level": int(a["anchor_level"][i]), "stride": int(strides[a["anchor_level"][i]][1]),
                 "size": float(a["anchor_size"][i]), "ratio": float(a["anchor_ratio"][i]),
                 "label": int(a["anchor_label"][i]), "sampled": bool(a["anchor_sampled"][i]),
                 "objectness": float(a["objectness"][i]), "box": a["anchors"][i].tolist(),
                 "iou": [float(v) for v in row]} for i, row in zip(idx.tolist(), iou)]

    def click_roi(self, x: float, y: float) -> dict | None:
        """Select the smallest shown RoI containing (x, y): its RoI Align grid and level, or None."""
        a = self.arrays
        if a is None or not len(a["rois"]):
            return None
        i = smallest_box_at(a["rois"], x, y, self._level_mask(a["roi_level"]))
        if i < 0:
            return None
        return self.select_roi(i)

    def select_roi(self, i: int) -> dict:
        a = self.arrays
        self.selected_roi, self.clicked_anchors = i, np.zeros(0, np.int64)
        self._show_clicked()
        _, level = roi_points(a, i)
        out_h, out_w, ratio, aligned = (int(v) for v in a["roi_pool_params"])
        label = int(a["roi_label"][i])
        return {"index": i, "level": level, "stride": float(1.0 / a["roi_pool_scales"][level]), "label": label,
                "class": self.label_name(label), "iou": float(a["roi_iou"][i]),
                "matched_gt": int(a["roi_matched_gt"][i]), "box": a["rois"][i].tolist(),
                "output": (out_h, out_w), "sampling_ratio": ratio, "aligned": bool(aligned)}

    def _show_clicked(self) -> None:
        a = self.arrays
        idx = self.clicked_anchors
        if a is None:
            return
        self.items["click_anchors"].set_boxes(a["anchors"][idx], labels=[
            f"L{a['anchor_level'][i]} {a['anchor_size'][i]:g} {a['anchor_ratio'][i]:g} "
            f"{('ign', 'bg', 'fg')[a['anchor_label'][i] + 1]}" for i in idx.tolist()])
        if self.selected_roi >= 0:
            pts, _ = roi_points(a, self.selected_roi)
            self.items["roi_grid"].set_points(pts)
            self.items["roi_bins"].set_boxes(roi_bins(a, self.selected_roi))
        else:
            self.items["roi_grid"].set_points(np.zeros((0, 2)))
            self.items["roi_bins"].set_boxes(np.zeros((0, 4)))

    def hover_text(self, x: float, y: float) -> str:
        """Numbers about what is under (x, y) on the visible layers, topmost first ('' if nothing)."""
        a = self.arrays
        if a is None:
            return ""
        it = self.items
        if it["detections"].isVisible():
            b = it["detections"].boxes()
            i = smallest_box_at(b, x, y)
            if i >= 0:
                k = self.shown["detections"][i]
                return (f"detection: {self.label_name(int(a['detections_pre_nms_label'][k]))} "
                        f"score {a['detections_pre_nms_score'][k]:.3f} box {_fmt(b[i])}")
        if it["rois"].isVisible():
            i = smallest_box_at(a["rois"], x, y, self._level_mask(a["roi_level"]))
            if i >= 0:
                lab = int(a["roi_label"][i])
                return (f"RoI {i}: {self.label_name(lab) if lab else 'background'} IoU {a['roi_iou'][i]:.2f} "
                        f"level {a['roi_level'][i]} box {_fmt(a['rois'][i])}")
        if it["proposals"].isVisible():
            b = it["proposals"].boxes()
            i = smallest_box_at(b, x, y)
            if i >= 0:
                k = self.shown["proposals"][i]
                return (f"proposal: objectness {a['proposals_pre_nms_score'][k]:.3f} level "
                        f"{a['proposals_pre_nms_level'][k]} box {_fmt(b[i])}")
        if it["gt"].isVisible():
            i = smallest_box_at(a["gt_boxes"], x, y)
            if i >= 0:
                return f"ground truth {i}: {self.label_name(int(a['gt_labels'][i]))} box {_fmt(a['gt_boxes'][i])}"
        if it["anchors"].isVisible() or it["sampled"].isVisible():
            idx = anchors_at(a, x, y)
            lab = a["anchor_label"][idx]
            return (f"{len(idx)} anchors centred here: {int((lab == 1).sum())} fg, {int((lab == 0).sum())} bg, "
                    f"{int((lab == -1).sum())} ignored; max objectness {a['objectness'][idx].max():.3f}, "
                    f"max IoU {a['anchor_iou'][idx].max():.2f}")
        return ""


def _fmt(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in box) + "]"
