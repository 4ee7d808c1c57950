"""The Analytics dock's job and its train-settings helpers.

``analytics_job`` is ``engine.analysis.analyze.analyze_job``; when only the anchor clustering is
impossible (fewer usable boxes than k) the statistics are still returned, with ``kmeans_anchors`` None
and the engine's one-line reason in ``anchor_error``.

Anchors for training live in the project's Train settings (store meta ``train_settings``, the JSON the
Train panel saves) under ``extra``: ``anchor_sizes`` (one list per FPN level) and ``aspect_ratios``
(h / w), which the Faster R-CNN task reads for the tiny backbone (``engine.tasks.faster_rcnn.anchor_options``).
"""

from __future__ import annotations

import json

from engine.analysis.analyze import analyze_job
from engine.jobs import CancelToken, Sink
from engine.project.store import Store

SETTINGS_KEY = "train_settings"  # the Train panel's saved options (gui.training.controller.SETTINGS_KEY)


def analytics_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """``analyze_job`` (config: project, split, k, seed, categories, anchor_sizes, aspect_ratios)."""
    try:
        return analyze_job(config, sink, cancel)
    except ValueError as e:
        if int(config.get("k", 9)) <= 1:
            raise
        out = analyze_job({**config, "k": 1}, sink, cancel)  # raises again unless only k was the problem
        out["kmeans_anchors"] = None
        out["anchor_error"] = str(e)
        return out


def train_settings(store: Store) -> dict:
    """The project's saved Train settings ({} when none or unreadable)."""
    try:
        saved = json.loads(store.get_meta(SETTINGS_KEY) or "{}")
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) else {}


def current_anchors(store: Store) -> dict:
    """``{"anchor_sizes", "aspect_ratios"}`` set in the Train settings (absent keys: the model default)."""
    extra = train_settings(store).get("extra") or {}
    return {k: extra[k] for k in ("anchor_sizes", "aspect_ratios") if isinstance(extra, dict) and extra.get(k)}


def apply_anchors(store: Store, anchor_sizes: list[list[int]], aspect_ratios: list[float]) -> dict:
    """Write the anchors into the Train settings' ``extra`` (other settings kept); returns the settings."""
    saved = train_settings(store)
    extra = saved.get("extra") if isinstance(saved.get("extra"), dict) else {}
    saved["extra"] = {**extra, "anchor_sizes": [[int(v) for v in lv] for lv in anchor_sizes],
                      "aspect_ratios": [float(r) for r in aspect_ratios]}
    store.set_meta(SETTINGS_KEY, json.dumps(saved, sort_keys=True))
    return saved
