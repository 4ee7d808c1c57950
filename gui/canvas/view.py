"""The image canvas: a QGraphicsView whose scene coordinates ARE image pixel coordinates.

The image item sits at (0, 0) with 1 scene unit = 1 pixel, so annotation items and X-ray overlay
layers draw directly in original-image pixels (x right, y down). Z order: image 0, annotations 10,
overlays 20+, tool previews 100. Wheel zooms around the cursor (``wheel_scrolls``: labelme's convention,
wheel scrolls and Ctrl+wheel zooms), middle-drag or Space+drag pans, ``fit`` fits the image to the window.

Fitting converges in one pass whatever the sizes: the view has no scroll bars (pan with Space/middle drag,
or the wheel in labelme mode), so a fit never changes the viewport's size (with scroll bars that appeared
and disappeared, a narrow view looped resizeEvent -> fit -> zoom forever), and a resize refits only when
the viewport size changed.
``keep_view``: a new image of the same size keeps the zoom and position (unless in fit mode).
``set_levels(brightness, contrast)``: display-only adjustment of a plain (not tiled) image.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView, QWidget

Z_IMAGE, Z_ANNOTATIONS, Z_OVERLAYS, Z_TOOLS = 0.0, 10.0, 20.0, 100.0
MIN_ZOOM, MAX_ZOOM = 0.01, 64.0


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> QImage (copies, so the array may be reused)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class CanvasTool(Protocol):
    """An editing tool (e.g. ``gui.labeling.tools``): gets mouse/key events before the view; True = handled."""

    def mouse_press(self, event: QMouseEvent, pos: QPointF) -> bool: ...
    def mouse_move(self, event: QMouseEvent, pos: QPointF) -> bool: ...
    def mouse_release(self, event: QMouseEvent, pos: QPointF) -> bool: ...
    def mouse_double_click(self, event: QMouseEvent, pos: QPointF) -> bool: ...
    def key_press(self, event: QKeyEvent) -> bool: ...


class CanvasView(QGraphicsView):
    """Shows one image and whatever items are added to ``scene()`` in image pixel coordinates."""

    cursor_moved = Signal(float, float)  # image pixel coordinates (x, y) under the cursor
    zoom_changed = Signal(float)  # view scale (1.0 = 100 %)
    clicked = Signal(float, float, int)  # image pixel x, y, Qt.KeyboardModifiers as int
    image_size_changed = Signal(int, int)  # width, height (0, 0 when no image)
    context_menu = Signal(QPoint, QPointF)  # global position, image pixel position

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 40, 44))
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image_item: QGraphicsPixmapItem | None = None
        self._message_item: QGraphicsSimpleTextItem | None = None
        self._image_size = (0, 0)
        self._pan_from: QPointF | None = None
        self._space_down = False
        self.last_cursor = QPointF(-1, -1)
        self._fit_mode = True  # refit on resize until the user zooms or pans
        self._fitted_for = QSize(-1, -1)  # viewport size of the last fit
        self._fitting = False
        self.fit_count = 0  # fits done (tests check that a resize does not loop)
        self.wheel_scrolls = False  # labelme: wheel scrolls, Ctrl+wheel zooms
        self.keep_view = False  # a new image keeps zoom and position (when not fitting)
        self._levels = (0.0, 1.0)  # brightness offset (-1..1), contrast factor
        self._source: QImage | None = None  # the unadjusted image of a plain pixmap item
        self.tool: CanvasTool | None = None  # active editing tool; panning keys/buttons stay with the view
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # see the module docstring
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    # -- content ------------------------------------------------------------------------------
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image, (0, 0) if none."""
        return self._image_size

    def set_image(self, rgb: np.ndarray | None, fit: bool = True) -> None:
        """Show an (H, W, 3) uint8 RGB image (or clear with None)."""
        self._clear_image()
        if rgb is None:
            self._image_size = (0, 0)
            self.image_size_changed.emit(0, 0)
            return
        h, w = rgb.shape[:2]
        self._image_item = QGraphicsPixmapItem(QPixmap.fromImage(rgb_to_qimage(rgb)))
        self._image_item.setZValue(Z_IMAGE)
        self._image_item.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.scene().addItem(self._image_item)
        self._set_size(w, h)
        self._remember_source()
        if fit and not self._keeps_view():
            self.fit()

    def set_image_item(self, item: QGraphicsPixmapItem | None, width: int, height: int, fit: bool = True) -> None:
        """Show a prepared image item (e.g. a tiled item for huge images) of the given pixel size."""
        self._clear_image()
        if item is not None:
            item.setZValue(Z_IMAGE)
            self.scene().addItem(item)
            self._image_item = item
        self._set_size(width, height)
        self._remember_source()
        if fit and not self._keeps_view():
            self.fit()

    def _keeps_view(self) -> bool:
        return self.keep_view and not self._fit_mode

    # -- display levels ---------------------------------------------------------------------------
    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_levels(self, brightness: float = 0.0, contrast: float = 1.0) -> None:
        """Display-only brightness (-1..1, added) and contrast (factor around mid-grey); data never changes."""
        self._levels = (float(brightness), float(contrast))
        self._apply_levels()

    def _remember_source(self) -> None:
        item = self._image_item
        self._source = item.pixmap().toImage() if type(item) is QGraphicsPixmapItem else None
        if self._levels != (0.0, 1.0):
            self._apply_levels()

    def _apply_levels(self) -> None:
        item, src = self._image_item, self._source
        if src is None or type(item) is not QGraphicsPixmapItem or src.isNull():
            return
        b, c = self._levels
        if (b, c) == (0.0, 1.0):
            item.setPixmap(QPixmap.fromImage(src))
            return
        img = src.convertToFormat(QImage.Format.Format_RGB32)
        lut = np.clip((np.arange(256, dtype=np.float32) - 127.5) * c + 127.5 + b * 255, 0, 255).astype(np.uint8)
        a = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
        out = lut[a]
        out.reshape(img.height(), -1, 4)[:, :img.width(), 3] = 255
        adj = QImage(out.data, img.width(), img.height(), img.bytesPerLine(), QImage.Format.Format_RGB32).copy()
        item.setPixmap(QPixmap.fromImage(adj))

    def show_message(self, text: str) -> None:
        """Replace the image by a readable message (e.g. 'cannot decode image: ...')."""
        self._clear_image()
        item = QGraphicsSimpleTextItem(text)
        font = QFont()
        font.setPointSize(12)
        item.setFont(font)
        item.setBrush(QColor(255, 200, 120))
        self.scene().addItem(item)
        self._message_item = item
        self._image_size = (0, 0)
        self.image_size_changed.emit(0, 0)
        self.setSceneRect(item.boundingRect().adjusted(-20, -20, 20, 20))
        self.resetTransform()
        self.centerOn(item)
        self.zoom_changed.emit(1.0)

    def message(self) -> str:
        return self._message_item.text() if self._message_item is not None else ""

    def _set_size(self, w: int, h: int) -> None:
        self._image_size = (w, h)
        margin = max(w, h) * 3.0
        self.setSceneRect(QRectF(-margin, -margin, w + 2 * margin, h + 2 * margin))
        self.image_size_changed.emit(w, h)

    def _clear_image(self) -> None:
        self._source = None
        for attr in ("_image_item", "_message_item"):
            item = getattr(self, attr)
            if item is not None:
                self.scene().removeItem(item)
                setattr(self, attr, None)

    # -- zoom and pan -------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Fit the whole image into the viewport; stays fitted on resizes until the user zooms or pans."""
        self._set_fit_mode(True)
        self._fit_now()

    def is_fitting(self) -> bool:
        return self._fit_mode

    def _set_fit_mode(self, on: bool) -> None:
        self._fit_mode = on

    def _fit_now(self) -> None:
        w, h = self._image_size
        if not w or not h or self._fitting:
            return
        self._fitting = True
        try:
            vp = self.viewport().size()
            self._fitted_for = QSize(vp)
            s = max(MIN_ZOOM, min(MAX_ZOOM, min(max(vp.width() - 2, 1) / w, max(vp.height() - 2, 1) / h)))
            old = self.zoom()
            self.setTransform(QTransform.fromScale(s, s))
            self.centerOn(w / 2, h / 2)
            self.fit_count += 1
        finally:
            self._fitting = False
        if abs(self.zoom() - old) > 1e-12 or self.fit_count == 1:
            self.zoom_changed.emit(self.zoom())

    def show_rect(self, rect: QRectF) -> None:
        """Zoom and pan so ``rect`` (image pixels) fills the view."""
        self._set_fit_mode(False)
        self.resetTransform()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom())

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_mode and self.viewport().size() != self._fitted_for:
            self._fit_now()

    def showEvent(self, event: object) -> None:  # noqa: N802
        super().showEvent(event)
        if self._fit_mode and self.viewport().size() != self._fitted_for:
            self._fit_now()

    def zoom_by(self, factor: float, anchor_view: QPointF | None = None) -> None:
        """Multiply the zoom by ``factor`` keeping the scene point under ``anchor_view`` fixed."""
        self._set_fit_mode(False)
        new = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom() * factor))
        factor = new / self.zoom()
        if anchor_view is None:
            anchor_view = QPointF(self.viewport().rect().center())
        before = self.mapToScene(anchor_view.toPoint())
        self.scale(factor, factor)
        moved = QPointF(self.mapFromScene(before)) - anchor_view
        self.pan_by(-moved.x(), -moved.y())
        self.zoom_changed.emit(self.zoom())

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the content by (dx, dy) viewport pixels."""
        self._set_fit_mode(False)
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(round(h.value() - dx))
        v.setValue(round(v.value() - dy))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if self.wheel_scrolls and not ctrl:  # labelme: wheel scrolls (Shift: sideways), Ctrl+wheel zooms
            d = event.angleDelta()
            dx, dy = d.x(), d.y()
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                dx, dy = dy, dx
            self.pan_by(dx / 2.0, dy / 2.0)
            event.accept()
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(math.pow(1.2, steps), event.position())
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        p = self.mapToScene(event.pos())
        self.context_menu.emit(event.globalPos(), QPointF(p))
        event.accept()

    def keyPressEvent(self, event: object) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self.tool is not None and self.tool.key_press(event):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: object) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pan = event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space_down)
        if pan:
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            p = self.mapToScene(event.position().toPoint())
            self.clicked.emit(p.x(), p.y(), int(event.modifiers().value))
        if self.tool is not None and self.tool.mouse_press(event, self.scene_pos(event)):
            event.accept()
            return
        super().mousePressEvent(event)

    def scene_pos(self, event: QMouseEvent) -> QPointF:
        """The event position in scene (image pixel) coordinates, sub-pixel."""
        return self.viewportTransform().inverted()[0].map(event.position())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.tool is not None and self.tool.mouse_double_click(event, self.scene_pos(event)):
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by(d.x(), d.y())
            event.accept()
        p = self.mapToScene(event.position().toPoint())
        self.last_cursor = p
        self.cursor_moved.emit(p.x(), p.y())
        if self._pan_from is not None:
            return
        if self.tool is None or not self.tool.mouse_move(event, self.scene_pos(event)):
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_down:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        if self.tool is not None and self.tool.mouse_release(event, self.scene_pos(event)):
            event.accept()
            return
        super().mouseReleaseEvent(event)
