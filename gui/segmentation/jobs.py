"""The dock's job, run by the bridge on a worker thread (never on the GUI thread).

``segment_view_job(config, sink, cancel)``: ``engine.inference.segment.segment_job`` (same config keys, same
summary result, the network runs once per image and checkpoint) plus ``colors`` ({category id: '#rrggbb'}):
the ``ArraysReady(kind="segmentation")`` it relays also carries the images the canvas shows, built here so
the GUI thread only wraps them in ``QImage``s — (H, W, 4) uint8 C-contiguous RGBA:
``rgba_before`` / ``rgba_after`` (class colours, background transparent) and ``rgba_uncertainty_before`` /
``rgba_uncertainty_after`` (a warm ramp whose opacity grows with the uncertainty).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.events import ArraysReady, Event
from engine.inference.segment import segment_job
from engine.jobs import CancelToken, Sink

CLASS_ALPHA = 255  # the dock's opacity slider sets the layer's opacity
FALLBACK = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6")


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def class_lut(categories: list[int | None], colors: dict[int, str]) -> np.ndarray:
    """(C, 4) uint8 RGBA per model label: the category's colour, background (None) transparent."""
    lut = np.zeros((max(1, len(categories)), 4), np.uint8)
    for lab, cid in enumerate(categories):
        if cid is None:
            continue
        lut[lab, :3] = _rgb(colors.get(int(cid)) or FALLBACK[lab % len(FALLBACK)])
        lut[lab, 3] = CLASS_ALPHA
    return lut


def class_rgba(class_map: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 4) uint8 C-contiguous RGBA."""
    return np.ascontiguousarray(lut[np.clip(class_map, 0, len(lut) - 1)])


def uncertainty_rgba(u: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 4) uint8 RGBA: yellow (some doubt) to red (uniform), alpha = 230 u."""
    u = np.clip(u, 0.0, 1.0)
    out = np.empty((*u.shape, 4), np.uint8)
    out[..., 0] = 255
    out[..., 1] = (230 * (1.0 - u)).astype(np.uint8)
    out[..., 2] = 0
    out[..., 3] = (230 * u).astype(np.uint8)
    return out


def segment_view_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """``segment_job`` with the display images added to its arrays (module docstring)."""
    colors = {int(k): str(v) for k, v in (config.get("colors") or {}).items()}
    engine_config = {k: v for k, v in config.items() if k != "colors"}

    def relay(e: Event) -> None:
        if isinstance(e, ArraysReady) and e.kind == "segmentation":
            a = dict(e.arrays)
            lut = class_lut(list(e.meta.get("label_categories") or []), colors)
            for side in ("before", "after"):
                a[f"rgba_{side}"] = class_rgba(a[side], lut)
                a[f"rgba_uncertainty_{side}"] = uncertainty_rgba(a[f"uncertainty_{side}"])
            e = replace(e, arrays=a)
        sink(e)

    return segment_job(engine_config, relay, cancel)
