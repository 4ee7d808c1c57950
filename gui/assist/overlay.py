"""``SuggestionLayer``: every pending suggestion of the image on screen as ONE QGraphicsItem.

Boxes are drawn as dashed outlines; masks as a light translucent fill with a dashed outline (both
prepared from the suggestion's crop when the data is set, never in ``paint``). Each suggestion has a
score chip ("circle 0.87") at its top-left corner, in screen pixels; clicking a chip accepts that
suggestion (``chip_at`` is the hit test the Assist feature's event filter uses). The current suggestion
(the one Enter accepts and Del rejects) is drawn thicker, its chip filled brighter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from engine.project.shapes import Mask
from engine.project.store import Suggestion
from gui.canvas.overlays import OverlayLayer, visible_rect
from gui.canvas.view import Z_OVERLAYS

Z = Z_OVERLAYS + 40  # above the X-ray and evaluation layers, below tool previews
FILL_ALPHA = 60
LABEL_LIMIT = 60  # chips only when at most this many suggestions are in view


@dataclass
class _Entry:
    id: int
    rect: QRectF  # bbox, image pixels
    color: QColor
    label: str
    outline: QPainterPath | None = None  # masks: the region's outline (image pixels)
    fill: QImage | None = None  # masks: translucent crop, drawn at (x0, y0)
    fill_buf: np.ndarray | None = None  # keeps the QImage's memory alive
    origin: QPointF | None = None


def mask_outline(x0: int, y0: int, crop: np.ndarray) -> QPainterPath:
    """The outline of a crop's set pixels as a path in image pixels: its row runs, runs repeated on the next
    rows merged into one rectangle, united (``simplified``)."""
    c = np.asarray(crop, bool)
    h, w = c.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = c
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # row-major order: the i-th end closes the i-th start
    open_: dict[tuple[int, int], list[int]] = {}  # (start, end) -> [first row, last row]
    rects: list[tuple[int, int, int, int]] = []
    for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist()):
        span = open_.get((s, e))
        if span is not None and span[1] == r - 1:
            span[1] = r
            continue
        if span is not None:
            rects.append((s, span[0], e, span[1]))
        open_[(s, e)] = [r, r]
    rects.extend((s, r0, e, r1) for (s, e), (r0, r1) in open_.items())
    path = QPainterPath()
    for s, r0, e, r1 in rects:
        path.addRect(QRectF(x0 + s, y0 + r0, e - s, r1 - r0 + 1))
    return path.simplified()


def mask_fill(crop: np.ndarray, color: QColor) -> tuple[QImage, np.ndarray]:
    """A premultiplied BGRA image of the crop in ``color`` at ``FILL_ALPHA`` (and its buffer)."""
    c = np.asarray(crop, bool)
    h, w = c.shape
    a = FILL_ALPHA / 255.0
    buf = np.zeros((h, w, 4), np.uint8)
    buf[c] = (round(color.blue() * a), round(color.green() * a), round(color.red() * a), FILL_ALPHA)
    img = QImage(buf.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
    return img, buf


class SuggestionLayer(OverlayLayer):
    """Pending suggestions (shapes) of one image, dashed, with score chips; ``current`` drawn thicker."""

    def __init__(self, z: float = Z) -> None:
        super().__init__("suggestions", "#ffd400", z)
        self.entries: list[_Entry] = []
        self.current: int | None = None
        self.font = QFont()
        self.font.setPixelSize(11)
        self._metrics = QFontMetricsF(self.font)

    # -- data ---------------------------------------------------------------------------------
    def set_suggestions(self, suggestions: list[Suggestion], colors: dict[int, str], names: dict[int, str],
                        current: int | None = None) -> None:
        """Show these suggestions (tag suggestions are skipped: they have no shape)."""
        entries = []
        for s in suggestions:
            if s.geometry is None or s.id is None:
                continue
            color = QColor(colors.get(int(s.category_id or 0), "#ffd400"))
            x1, y1, x2, y2 = (float(v) for v in s.geometry.bbox())
            score = "" if s.score is None else f" {s.score:.2f}"
            e = _Entry(int(s.id), QRectF(x1, y1, x2 - x1, y2 - y1), color,
                       f"{names.get(int(s.category_id or 0), '?')}{score}")
            if isinstance(s.geometry, Mask):
                x0, y0, crop = s.geometry.crop()
                e.outline = mask_outline(x0, y0, crop)
                e.fill, e.fill_buf = mask_fill(crop, color)
                e.origin = QPointF(x0, y0)
            elif hasattr(s.geometry, "points"):
                path = QPainterPath()
                pts = np.asarray(s.geometry.points, np.float64).reshape(-1, 2)
                if len(pts):
                    path.moveTo(*pts[0])
                    for p in pts[1:]:
                        path.lineTo(*p)
                    if len(pts) > 2:
                        path.closeSubpath()
                e.outline = path
            entries.append(e)
        self.entries = entries
        self.current = current
        if entries:
            r = entries[0].rect
            for e in entries[1:]:
                r = r.united(e.rect)
            self._set_bounds(r.left(), r.top(), r.right(), r.bottom())
        else:
            self._set_bounds(0, 0, 0, 0)
        self.update()

    def set_current(self, suggestion_id: int | None) -> None:
        if suggestion_id != self.current:
            self.current = suggestion_id
            self.update()

    def clear(self) -> None:
        self.set_suggestions([], {}, {})

    def ids(self) -> list[int]:
        return [e.id for e in self.entries]

    # -- geometry of the chips (paint and hit test share it) ----------------------------------------
    def _chip(self, e: _Entry, t: QTransform) -> QRectF:
        """The chip of ``e`` in device (viewport) pixels: above the box's top-left corner (inside it at the
        top edge of the view)."""
        p = t.map(e.rect.topLeft())
        w = self._metrics.horizontalAdvance(e.label) + 8
        h = self._metrics.height() + 2
        top = p.y() - h if p.y() - h >= 0 else p.y()
        return QRectF(p.x(), top, w, h)

    def chip_at(self, view_pos: QPointF, t: QTransform) -> int | None:
        """The suggestion whose chip is under ``view_pos`` (viewport pixels; ``t`` = the view's transform)."""
        if not self.isVisible() or len(self.entries) > LABEL_LIMIT:
            return None
        for e in reversed(self.entries):  # drawn last = on top
            if self._chip(e, t).contains(view_pos):
                return e.id
        return None

    def at(self, x: float, y: float) -> int | None:
        """The smallest suggestion whose box contains the image point (x, y)."""
        hits = [e for e in self.entries if e.rect.contains(QPointF(x, y))]
        return min(hits, key=lambda e: e.rect.width() * e.rect.height()).id if hits else None

    # -- paint -----------------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.entries:
            self.last_paint = {"mode": "none", "drawn": 0}
            return
        r = visible_rect(painter, option, self._bounds)
        shown = [e for e in self.entries if e.rect.intersects(r) or e.rect.isEmpty()]
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for e in shown:
            current = e.id == self.current
            if e.fill is not None and e.origin is not None:
                painter.drawImage(e.origin, e.fill)
            pen = QPen(e.color.lighter(130) if current else e.color, 3.0 if current else 1.5)
            pen.setCosmetic(True)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            if e.outline is not None:
                painter.drawPath(e.outline)
            else:
                painter.drawRect(e.rect)
        if len(shown) <= LABEL_LIMIT:
            t = painter.worldTransform()
            painter.save()
            painter.resetTransform()
            painter.setFont(self.font)
            for e in shown:
                chip = self._chip(e, t)
                current = e.id == self.current
                bg = QColor(e.color)
                bg.setAlpha(235 if current else 170)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(bg)
                painter.drawRoundedRect(chip, 3, 3)
                painter.setPen(QColor(255, 255, 255) if bg.lightnessF() < 0.6 else QColor(0, 0, 0))
                painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, e.label)
            painter.restore()
        self.last_paint = {"mode": "vector", "drawn": len(shown)}
