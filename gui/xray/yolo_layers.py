"""The YOLOv1 grid overlay: a ``yolo_v1`` X-ray capture + NMS settings -> one graphics item per layer.

Qt-side model of the X-ray panel's YOLO mode (no widgets). A capture (``engine.xray.yolo.capture_yolo``
arrays, keys in docs/xray.md "YOLOv1 captures", original image pixels) becomes: the S x S grid (cell
(i, j) spans x in [j W/S, (j+1) W/S), y in [i H/S, (i+1) H/S): the input is a plain resize), the
class-probability map (cell colour = argmax class, opacity = max probability), the cells responsible
for a GT object, GT boxes and centres, GT boxes that lost their cell to a larger one (dropped), every
predictor's box with opacity by its confidence, and the detections before / after NMS. The sliders
re-run class-aware NMS on the captured pre-NMS pairs (``engine.xray.nms.detections_keep``, at most
S*S*B*C boxes, in ``refresh``, never in a paint handler). Hovering a cell reads its output vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene, QStyleOptionGraphicsItem, QWidget

from engine.xray.nms import detections_keep
from gui.canvas.overlays import BoxLayer, OverlayLayer, PointLayer
from gui.canvas.view import Z_OVERLAYS
from gui.xray.layers import LayerSpec

YOLO_TASK = "yolo_v1"
CONF_LEVELS = 8  # predictor boxes: confidence quantised into this many opacity steps
MIN_ALPHA = 28  # opacity of a confidence-0 predictor box (still findable)
PREDICTOR_COLORS = ("#00e5ff", "#ffb000", "#7cfc00", "#ff6ec7", "#b388ff")  # predictor b of a cell
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")  # class c (label c + 1) of the probability map
CLASS_MAP_ALPHA = 170  # opacity of a cell whose max class probability is 1
RESPONSIBLE_COLOR = "#ffe600"

YOLO_LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec("class_map", "class-probability map", ("#1f77b4",), visible=True),
    LayerSpec("responsible", "responsible cells (GT centre)", (RESPONSIBLE_COLOR,), visible=True),
    LayerSpec("grid", "grid (S×S cells)", ("#ffffff",), visible=True, alpha=170),
    LayerSpec("predictors", "B boxes per cell (opacity = conf)", PREDICTOR_COLORS[:2], ("b0", "b1")),
    LayerSpec("responsible_boxes", "responsible predictors' boxes", (RESPONSIBLE_COLOR,), width=2),
    LayerSpec("detections_pre_nms", "detections before NMS", ("#ff80ff",), dashed=True, alpha=150),
    LayerSpec("detections", "detections (after NMS)", ("#ff2020",), visible=True, width=2),
    LayerSpec("gt", "ground truth", ("#ffffff",), visible=True, width=2),
    LayerSpec("dropped", "GT that lost its cell (dropped)", ("#ff00ff",), visible=True, width=2, dashed=True),
    LayerSpec("gt_centres", "GT centres", (RESPONSIBLE_COLOR, "#ff00ff"), ("kept", "dropped"), visible=True),
    LayerSpec("hover_cell", "hovered cell", ("#00ffff",), visible=True, width=2),
)


def is_yolo_capture(meta: Mapping | None, arrays: Mapping | None = None) -> bool:
    """Whether an X-ray capture is a YOLOv1 grid (``meta["task"]``, or its arrays when meta has no task)."""
    task = (meta or {}).get("task")
    if task is not None:
        return task == YOLO_TASK
    return arrays is not None and "yolo_grid" in arrays


class AlphaBoxLayer(BoxLayer):
    """A ``BoxLayer`` whose palette colours keep their own alpha (groups = opacity steps)."""

    def _group_colors(self) -> list[QColor]:
        return [QColor(c) for c in (self._palette or [self._color])]


class CellLayer(OverlayLayer):
    """An S x S grid of filled cells over the image: ``rgba`` (S, S, 4) uint8 stretched to (W, H) image
    pixels without smoothing; cells with alpha > 0 get an outline when ``outline`` > 0 (screen pixels).
    The QImage wraps the C-contiguous array, which is never mutated after hand-over."""

    def __init__(self, name: str, color: QColor | str, z: float = Z_OVERLAYS, outline: float = 0.0) -> None:
        super().__init__(name, color, z)
        self.outline = outline
        self._rgba = np.zeros((0, 0, 4), np.uint8)
        self._image: QImage | None = None
        self._edges: list[QRectF] = []
        self._rect = QRectF()

    def set_cells(self, rgba: np.ndarray, width: float, height: float) -> None:
        rgba = np.ascontiguousarray(rgba, np.uint8)
        self._rgba = rgba
        rows, cols = rgba.shape[:2]
        if rows and cols:
            self._image = QImage(rgba.data, cols, rows, 4 * cols, QImage.Format.Format_RGBA8888)
            cw, ch = width / cols, height / rows
            self._edges = [QRectF(j * cw, i * ch, cw, ch) for i, j in zip(*np.nonzero(rgba[..., 3]))]
            self._rect = QRectF(0.0, 0.0, float(width), float(height))
            self._set_bounds(0.0, 0.0, float(width), float(height))
        else:
            self._image, self._edges = None, []
            self._set_bounds(0, 0, 0, 0)
        self.update()

    def clear(self) -> None:
        self.set_cells(np.zeros((0, 0, 4), np.uint8), 0, 0)

    def cells(self) -> np.ndarray:
        """(S, S, 4) uint8 RGBA shown (a view: do not modify)."""
        return self._rgba

    def lit(self) -> int:
        """Cells drawn (alpha > 0)."""
        return int((self._rgba[..., 3] > 0).sum()) if self._rgba.size else 0

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is None:
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(self._rect, self._image)
        if self.outline > 0 and self._edges:
            pen = QPen(self._color, self.outline)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRects(self._edges)
        painter.restore()
        self.last_paint = {"mode": "image", "drawn": self.lit()}


@dataclass
class YoloFilters:
    score_thresh: float = 0.005
    nms_iou: float = 0.5
    top_k: int = 100


def _rgb(color: str) -> tuple[int, int, int]:
    c = QColor(color)
    return c.red(), c.green(), c.blue()


class YoloLayers:
    """Items for every YOLO layer (``items[name]``), filled from a capture; numbers for hovers."""

    def __init__(self) -> None:
        self.items: dict[str, OverlayLayer] = {}
        for i, spec in enumerate(YOLO_LAYERS):
            z = Z_OVERLAYS + i
            if spec.name in ("class_map", "responsible"):
                layer: OverlayLayer = CellLayer(spec.name, spec.colors[0], z,
                                                outline=2.0 if spec.name == "responsible" else 0.0)
            elif spec.name == "gt_centres":
                layer = PointLayer(spec.name, spec.colors[0], z, size=7)
            elif spec.name == "predictors":
                layer = AlphaBoxLayer(spec.name, spec.colors[0], z, spec.width)
            else:
                layer = BoxLayer(spec.name, spec.colors[0], z, spec.width, spec.dashed, spec.alpha)
            self.items[spec.name] = layer
        # the dropped GT centres: a second dot layer, toggled with 'gt_centres'
        self.items["dropped_centres"] = PointLayer("dropped_centres", "#ff00ff", Z_OVERLAYS + len(YOLO_LAYERS), 9)
        for spec in YOLO_LAYERS:
            self.set_visible(spec.name, spec.visible)
        self.arrays: dict[str, np.ndarray] | None = None
        self.meta: dict = {}
        self.filters = YoloFilters()
        self.shown: dict[str, np.ndarray] = {}  # layer -> indices into the capture array it shows
        self.hovered: tuple[int, int] | None = None

    # -- scene and appearance ------------------------------------------------------------------
    def attach(self, scene: QGraphicsScene) -> None:
        for item in self.items.values():
            if item.scene() is not None:
                item.scene().removeItem(item)
            scene.addItem(item)

    def set_visible(self, name: str, on: bool) -> None:
        self.items[name].setVisible(on)
        if name == "gt_centres":
            self.items["dropped_centres"].setVisible(on)

    def is_visible(self, name: str) -> bool:
        return self.items[name].isVisible()

    def label_name(self, label: int) -> str:
        names = self.meta.get("label_names") or []
        return names[label] if 0 <= label < len(names) else f"class {label}"

    def class_colors(self) -> list[str]:
        """Colour of class index c (label c + 1) on the probability map."""
        C = self.grid()[2] if self.arrays is not None else 0
        return [CLASS_COLORS[c % len(CLASS_COLORS)] for c in range(C)]

    # -- geometry --------------------------------------------------------------------------------
    def grid(self) -> tuple[int, int, int]:
        """(S, B, C) of the shown capture."""
        S, B, C = (int(v) for v in self.arrays["yolo_grid"])
        return S, B, C

    def image_wh(self) -> tuple[float, float]:
        h, w = (float(v) for v in self.arrays["image_size"])
        return w, h

    def cell_boxes(self) -> np.ndarray:
        """(S*S, 4) float64 xyxy of every cell in original pixels, row-major (index i*S + j)."""
        S = self.grid()[0]
        w, h = self.image_wh()
        xs, ys = np.arange(S + 1) * (w / S), np.arange(S + 1) * (h / S)
        jj, ii = np.meshgrid(np.arange(S), np.arange(S))
        return np.stack([xs[jj], ys[ii], xs[jj + 1], ys[ii + 1]], -1).reshape(-1, 4).astype(np.float64)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, col) of the cell holding image pixel (x, y), None outside the image."""
        if self.arrays is None:
            return None
        w, h = self.image_wh()
        if not (0 <= x < w and 0 <= y < h):
            return None
        S = self.grid()[0]
        return min(int(y * S / h), S - 1), min(int(x * S / w), S - 1)

    # -- data -----------------------------------------------------------------------------------
    def set_capture(self, arrays: Mapping[str, np.ndarray], meta: Mapping | None = None) -> None:
        """Show a capture; the NMS settings start at the model's own (``box_params``)."""
        self.arrays, self.meta = dict(arrays), dict(meta or {})
        score_t, nms_t, top_k = (float(v) for v in self.arrays["box_params"])
        self.filters = YoloFilters(score_t, nms_t, int(top_k))
        self.hovered = None
        self._fill_static()
        self.refresh()

    def clear(self) -> None:
        self.arrays, self.meta, self.shown, self.hovered = None, {}, {}, None
        for item in self.items.values():
            if isinstance(item, BoxLayer):
                item.set_boxes(np.zeros((0, 4)))
            elif isinstance(item, PointLayer):
                item.set_points(np.zeros((0, 2)))
            elif isinstance(item, CellLayer):
                item.clear()

    def _fill_static(self) -> None:
        """Layers that do not depend on the sliders: grid, class map, responsible cells, GT, predictors."""
        a, it = self.arrays, self.items
        S, B, C = self.grid()
        w, h = self.image_wh()
        it["grid"].set_boxes(self.cell_boxes())
        # class-probability map: colour = argmax class, opacity = max probability
        prob = np.asarray(a["yolo_class_prob"], np.float32).reshape(S, S, C)
        rgba = np.zeros((S, S, 4), np.uint8)
        if C:
            lut = np.array([_rgb(c) for c in self.class_colors()], np.uint8)
            rgba[..., :3] = lut[prob.argmax(-1)]
            rgba[..., 3] = np.clip(np.rint(prob.max(-1) * CLASS_MAP_ALPHA), 0, 255).astype(np.uint8)
        it["class_map"].set_cells(rgba, w, h)
        # responsible cells: every cell whose GT object a predictor learns
        resp = np.asarray(a["yolo_responsible"], bool).reshape(S, S, B)
        cells = resp.any(-1)
        hi = np.zeros((S, S, 4), np.uint8)
        hi[cells] = (*_rgb(RESPONSIBLE_COLOR), 90)
        it["responsible"].set_cells(hi, w, h)
        boxes = np.asarray(a["yolo_boxes"], np.float64).reshape(S * S * B, 4)
        it["responsible_boxes"].set_boxes(boxes[resp.reshape(-1)])
        self.shown["responsible_boxes"] = np.flatnonzero(resp.reshape(-1))
        # every predictor's box: colour by predictor index b, opacity by confidence
        conf = np.clip(np.asarray(a["yolo_conf"], np.float64).reshape(-1), 0.0, 1.0)
        level = np.rint(conf * (CONF_LEVELS - 1)).astype(np.int64)
        b_index = np.tile(np.arange(B), S * S)
        palette = []
        for b in range(B):
            base = QColor(PREDICTOR_COLORS[b % len(PREDICTOR_COLORS)])
            for k in range(CONF_LEVELS):
                c = QColor(base)
                c.setAlpha(round(MIN_ALPHA + (255 - MIN_ALPHA) * k / (CONF_LEVELS - 1)))
                palette.append(c)
        it["predictors"].set_boxes(boxes, b_index * CONF_LEVELS + level, palette=palette)
        # ground truth: kept boxes, dropped boxes, centres
        gt = np.asarray(a["gt_boxes"], np.float64).reshape(-1, 4)
        labels = np.asarray(a["gt_labels"], np.int64)
        dropped = np.zeros(len(gt), bool)
        dropped[np.asarray(a["yolo_dropped_gt"], np.int64)] = True
        gt_index = np.asarray(a["yolo_gt_index"], np.int64)
        cells_of = np.asarray(a["yolo_gt_cell"], np.int64).reshape(-1, 2)
        kept = np.flatnonzero(~dropped)
        it["gt"].set_boxes(gt[kept], labels=[self.label_name(int(labels[k])) for k in kept])
        drop = np.flatnonzero(dropped)
        drop_labels = []
        for k in drop:
            r, c = cells_of[k]
            owner = int(gt_index[r, c]) if r >= 0 else -1
            drop_labels.append(f"dropped: cell ({r}, {c}) learns gt {owner}")
        it["dropped"].set_boxes(gt[drop], labels=drop_labels)
        centres = np.stack([(gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2], 1)
        it["gt_centres"].set_points(centres[kept])
        it["dropped_centres"].set_points(centres[drop])
        self.shown["gt"], self.shown["dropped"] = kept, drop

    def detection_keep(self) -> np.ndarray:
        """Indices into ``detections_pre_nms`` kept at the sliders' score threshold and NMS IoU."""
        a, f = self.arrays, self.filters
        return detections_keep(a["detections_pre_nms"], a["detections_pre_nms_score"], a["detections_pre_nms_label"],
                               f.score_thresh, f.nms_iou, f.top_k)

    def refresh(self) -> None:
        """Recompute the slider-driven layers (pre-NMS pairs above the threshold, NMS survivors)."""
        a = self.arrays
        if a is None:
            return
        it = self.items
        scores = np.asarray(a["detections_pre_nms_score"], np.float32)
        above = np.flatnonzero(scores > self.filters.score_thresh)
        it["detections_pre_nms"].set_boxes(a["detections_pre_nms"][above])
        self.shown["detections_pre_nms"] = above
        k = self.detection_keep()
        self.shown["detections"] = k
        it["detections"].set_boxes(a["detections_pre_nms"][k], labels=[
            f"{self.label_name(int(lab))} {sc:.2f}"
            for lab, sc in zip(a["detections_pre_nms_label"][k], a["detections_pre_nms_score"][k])])

    def counts(self) -> dict[str, int]:
        """Boxes, points or lit cells in each layer."""
        out = {}
        for n, i in self.items.items():
            if isinstance(i, BoxLayer):
                out[n] = len(i.boxes())
            elif isinstance(i, PointLayer):
                out[n] = len(i.points())
            elif isinstance(i, CellLayer):
                out[n] = i.lit()
        out["gt_centres"] = out.get("gt_centres", 0) + out.pop("dropped_centres", 0)
        return out

    # -- hover and inspection -------------------------------------------------------------------
    def set_hovered(self, cell: tuple[int, int] | None) -> None:
        """Outline the hovered cell (None: none)."""
        if cell == self.hovered:
            return
        self.hovered = cell
        if cell is None or self.arrays is None:
            self.items["hover_cell"].set_boxes(np.zeros((0, 4)))
            return
        S = self.grid()[0]
        self.items["hover_cell"].set_boxes(self.cell_boxes()[cell[0] * S + cell[1]][None])

    def cell_vector(self, row: int, col: int) -> dict:
        """The output of cell (row, col): per predictor x, y, √w, √h, conf (raw layout), box, responsible;
        class probabilities; the GT object the cell learns (-1: none) and the dropped GT centred there."""
        a = self.arrays
        S, B, C = self.grid()
        pred = np.asarray(a["yolo_pred"], np.float32)[row, col]
        resp = np.asarray(a["yolo_responsible"], bool)[row, col]
        boxes = np.asarray(a["yolo_boxes"], np.float32)[row, col]
        predictors = [{"b": b, "x": float(pred[5 * b]), "y": float(pred[5 * b + 1]), "sqrt_w": float(pred[5 * b + 2]),
                       "sqrt_h": float(pred[5 * b + 3]), "conf": float(a["yolo_conf"][row, col, b]),
                       "box": boxes[b].tolist(), "responsible": bool(resp[b])} for b in range(B)]
        cells_of = np.asarray(a["yolo_gt_cell"], np.int64).reshape(-1, 2)
        dropped = [int(k) for k in np.asarray(a["yolo_dropped_gt"], np.int64)
                   if tuple(cells_of[k]) == (row, col)]
        return {"cell": (row, col), "predictors": predictors,
                "class_prob": [float(v) for v in np.asarray(a["yolo_class_prob"], np.float32)[row, col]],
                "gt": int(a["yolo_gt_index"][row, col]), "dropped_gt": dropped}

    def cell_text(self, row: int, col: int) -> str:
        """The cell's vector as text (one line per predictor, then the class probabilities)."""
        v = self.cell_vector(row, col)
        head = f"cell (row {row}, col {col})"
        if v["gt"] >= 0:
            head += f" · learns gt {v['gt']} {self.label_name(int(self.arrays['gt_labels'][v['gt']]))}"
        if v["dropped_gt"]:
            head += f" · dropped gt {', '.join(str(k) for k in v['dropped_gt'])} (cell taken)"
        lines = [head]
        for p in v["predictors"]:
            lines.append(f"b{p['b']}: x {p['x']:.3f} y {p['y']:.3f} √w {p['sqrt_w']:.3f} √h {p['sqrt_h']:.3f} "
                         f"conf {p['conf']:.3f}{'  ← responsible' if p['responsible'] else ''}")
        order = np.argsort(-np.asarray(v["class_prob"]), kind="stable")
        lines.append("classes: " + ", ".join(f"{self.label_name(int(c) + 1)} {v['class_prob'][c]:.3f}"
                                             for c in order.tolist()))
        return "\n".join(lines)

    def hover_text(self, x: float, y: float) -> str:
        """A detection under (x, y) (when shown) plus the vector of the cell there; '' outside the image."""
        cell = self.cell_at(x, y)
        if cell is None:
            return ""
        text = self.cell_text(*cell)
        if self.items["detections"].isVisible() and len(self.shown.get("detections", ())):
            b = self.items["detections"].boxes()
            inside = np.flatnonzero((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3]))
            if len(inside):
                i = inside[np.argmin((b[inside, 2] - b[inside, 0]) * (b[inside, 3] - b[inside, 1]))]
                k = self.shown["detections"][i]
                a = self.arrays
                p = int(a["detections_pre_nms_predictor"][k])
                S, B, _ = self.grid()
                text = (f"detection: {self.label_name(int(a['detections_pre_nms_label'][k]))} score "
                        f"{a['detections_pre_nms_score'][k]:.3f} from cell ({p // B // S}, {p // B % S}) "
                        f"b{p % B}\n{text}")
        return text


def legend_html(names: Sequence[str], colors: Sequence[str]) -> str:
    """Class colours of the probability map as rich text."""
    return " ".join(f'<span style="color:{c}">■</span>&nbsp;{n}' for n, c in zip(names, colors))
