"""Report plots as PNG files drawn with Pillow only (no Qt, no matplotlib): line plots, a heat map, bars.

Deliberately plain — the interactive views are the GUI's (pyqtgraph); these are for files and
reports. NaN values break a line (no point is drawn for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
MARGIN = (64, 46, 24, 52)  # left, top, right, bottom in pixels


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _frame(size: tuple[int, int], title: str) -> tuple[Image.Image, ImageDraw.ImageDraw, tuple[int, int, int, int]]:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = MARGIN
    box = (left, top, size[0] - right, size[1] - bottom)
    draw.text((left, 6), title, fill="black", font=_font())
    return img, draw, box


def line_plot(path: str | Path, series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str = "",
              xlabel: str = "", ylabel: str = "", xlim: tuple[float, float] | None = (0.0, 1.0),
              ylim: tuple[float, float] | None = (0.0, 1.0), size: tuple[int, int] = (640, 480),
              markers: Sequence[tuple[str, float]] = ()) -> Path:
    """Curves ``(name, x (N,), y (N,))`` with axes, ticks and a legend; limits None = from the data.
    ``markers``: labelled vertical dashed lines ``(label, x)`` (e.g. the best epoch)."""
    img, draw, (x0, y0, x1, y1) = _frame(size, title)
    xs = np.concatenate([np.asarray(x, np.float64) for _, x, _ in series]) if series else np.zeros(0)
    ys = np.concatenate([np.asarray(y, np.float64) for _, _, y in series]) if series else np.zeros(0)
    xlim = xlim or _limits(xs)
    ylim = ylim or _limits(ys)
    font = _font()
    draw.rectangle((x0, y0, x1, y1), outline="black")
    for i in range(6):
        fx, fy = i / 5, i / 5
        px = x0 + fx * (x1 - x0)
        py = y1 - fy * (y1 - y0)
        draw.line((px, y1, px, y1 + 4), fill="black")
        draw.line((x0 - 4, py, x0, py), fill="black")
        draw.line((px, y0, px, y1), fill=(235, 235, 235))
        draw.line((x0, py, x1, py), fill=(235, 235, 235))
        draw.text((px - 10, y1 + 6), _tick(xlim[0] + fx * (xlim[1] - xlim[0])), fill="black", font=font)
        draw.text((4, py - 6), _tick(ylim[0] + fy * (ylim[1] - ylim[0])), fill="black", font=font)
    draw.text(((x0 + x1) // 2 - 3 * len(xlabel), y1 + 22), xlabel, fill="black", font=font)
    draw.text((4, y0 - 20), ylabel, fill="black", font=font)

    def to_px(x: float, y: float) -> tuple[float, float]:
        fx = (x - xlim[0]) / ((xlim[1] - xlim[0]) or 1.0)
        fy = (y - ylim[0]) / ((ylim[1] - ylim[0]) or 1.0)
        return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)

    for i, (label, mx) in enumerate(markers):
        px = to_px(float(mx), ylim[0])[0]
        for yy in range(int(y0), int(y1), 8):
            draw.line((px, yy, px, min(yy + 4, y1)), fill=(90, 90, 90))
        tx = px + 3 if px + 3 + draw.textlength(label, font=font) < x1 else px - 3 - draw.textlength(label, font=font)
        draw.text((tx, y1 - 18 - 14 * i), label, fill=(60, 60, 60), font=font)
    for i, (name, x, y) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        run: list[tuple[float, float]] = []
        for xv, yv in zip(np.asarray(x, np.float64), np.asarray(y, np.float64)):
            if np.isfinite(xv) and np.isfinite(yv):
                run.append(to_px(float(xv), float(yv)))
                continue
            _draw_run(draw, run, color)
            run = []
        _draw_run(draw, run, color)
        ly = y0 + 6 + 14 * i
        draw.line((x1 - 130, ly + 6, x1 - 112, ly + 6), fill=color, width=2)
        draw.text((x1 - 108, ly), str(name)[:18], fill="black", font=font)
    return _save(img, path)


def _draw_run(draw: ImageDraw.ImageDraw, run: list[tuple[float, float]], color: tuple[int, int, int]) -> None:
    if len(run) > 1:
        draw.line(run, fill=color, width=2)
    elif len(run) == 1:
        x, y = run[0]
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)


def _limits(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if not len(v):
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _tick(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def heatmap(path: str | Path, matrix: np.ndarray, labels: Sequence[str], title: str = "",
            row_label: str = "truth", col_label: str = "prediction", normalise_rows: bool = True,
            cell: int = 40) -> Path:
    """A square count matrix as a heat map with the counts written in; colour = share of the row
    (``normalise_rows``) or of the largest cell. Rows = ``row_label``, columns = ``col_label``."""
    m = np.asarray(matrix, np.float64)
    n = len(m)
    font = _font()
    pad_left, pad_top = 110, 64
    img = Image.new("RGB", (pad_left + n * cell + 20, pad_top + n * cell + 40), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill="black", font=font)
    draw.text((pad_left, 26), f"{col_label} ->", fill="black", font=font)
    draw.text((10, pad_top - 14), f"{row_label} v", fill="black", font=font)
    scale = m.sum(1, keepdims=True) if normalise_rows else np.full((n, 1), m.max() if m.size else 1.0)
    share = np.divide(m, scale, out=np.zeros_like(m), where=scale > 0)
    for i in range(n):
        draw.text((10, pad_top + i * cell + cell // 2 - 6), str(labels[i])[:15], fill="black", font=font)
        draw.text((pad_left + i * cell + 2, pad_top - 14), str(labels[i])[:6], fill="black", font=font)
        for j in range(n):
            v = float(share[i, j])
            color = (int(255 - 225 * v), int(255 - 150 * v), 255)
            x, y = pad_left + j * cell, pad_top + i * cell
            draw.rectangle((x, y, x + cell, y + cell), fill=color, outline=(200, 200, 200))
            text = f"{int(m[i, j])}" if m[i, j] < 1e5 else f"{m[i, j]:.0e}"
            draw.text((x + 4, y + cell // 2 - 6), text, fill="white" if v > 0.6 else "black", font=font)
    return _save(img, path)


def bar_plot(path: str | Path, names: Sequence[str], values: np.ndarray, title: str = "",
             ylabel: str = "", size: tuple[int, int] = (640, 360)) -> Path:
    """One bar per name, values in [0, 1] (NaN: no bar, 'n/a' written)."""
    img, draw, (x0, y0, x1, y1) = _frame(size, title)
    font = _font()
    draw.rectangle((x0, y0, x1, y1), outline="black")
    draw.text((4, y0 - 20), ylabel, fill="black", font=font)
    for i in range(6):
        py = y1 - i / 5 * (y1 - y0)
        draw.text((4, py - 6), _tick(i / 5), fill="black", font=font)
    width = (x1 - x0) / max(1, len(names))
    for i, (name, v) in enumerate(zip(names, np.asarray(values, np.float64))):
        bx = x0 + i * width
        if np.isfinite(v):
            top = y1 - float(np.clip(v, 0, 1)) * (y1 - y0)
            draw.rectangle((bx + width * 0.15, top, bx + width * 0.85, y1), fill=PALETTE[i % len(PALETTE)])
        else:
            draw.text((bx + width * 0.3, y1 - 14), "n/a", fill="black", font=font)
        draw.text((bx + 2, y1 + 6), str(name)[:max(3, int(width // 7))], fill="black", font=font)
    return _save(img, path)


def _save(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
