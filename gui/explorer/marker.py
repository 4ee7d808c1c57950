"""The current run's loss settings, read from the store (Qt-free), for the explorer to mark on its curves.

The latest run's config (``store.runs()[-1].config``) wins; a project without runs falls back to the
Train panel's saved settings (meta key ``train_settings``, JSON, written by ``gui.training``), then to the
``TrainConfig`` defaults. Options a config lacks (older runs) take the ``TrainConfig`` defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.config import TrainConfig
from engine.project.store import Store

TRAIN_SETTINGS_KEY = "train_settings"  # gui.training.controller.SETTINGS_KEY (features never import each other)
_DEFAULTS = TrainConfig()


def num(v: float) -> str:
    """A short number for labels: 2, 0.25, 0.111."""
    return f"{v:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class RunMarker:
    """Loss options of one run (or of the saved Train settings). ``source``: where they came from, for the label."""

    source: str
    model: str
    focal_alpha: float
    focal_gamma: float
    box_loss_beta: float
    rpn_loss: str
    roi_loss: str

    @classmethod
    def from_config(cls, config: dict, source: str, model: str | None = None) -> RunMarker:
        def get(key: str, cast: type) -> object:
            try:
                return cast(config.get(key, getattr(_DEFAULTS, key)))
            except (TypeError, ValueError):
                return getattr(_DEFAULTS, key)

        return cls(source=source, model=str(model or config.get("model", _DEFAULTS.model)),
                   focal_alpha=float(get("focal_alpha", float)), focal_gamma=float(get("focal_gamma", float)),
                   box_loss_beta=float(get("box_loss_beta", float)), rpn_loss=str(get("rpn_loss", str)),
                   roi_loss=str(get("roi_loss", str)))

    @property
    def uses_focal(self) -> bool:
        return self.rpn_loss == "focal" or self.roi_loss == "focal"

    @property
    def alpha(self) -> float | None:
        """α for ``focal_curve``: None when the run does not weight (-1)."""
        return None if self.focal_alpha < 0 else self.focal_alpha

    def focal_text(self) -> str:
        a = "off (−1)" if self.alpha is None else num(self.focal_alpha)
        return f"this run: γ={num(self.focal_gamma)}, α={a}"

    def beta_text(self) -> str:
        return f"this run: β={num(self.box_loss_beta)}" + (" (L1)" if self.box_loss_beta <= 0 else "")

    def summary(self) -> str:
        """One line for the dock's header: source, model, which losses and their parameters."""
        focal = "" if self.uses_focal else " (focal not used)"
        return (f"{self.source} · {self.model} · RPN objectness {self.rpn_loss}, RoI classifier {self.roi_loss} · "
                f"γ={num(self.focal_gamma)}, α={num(self.focal_alpha)}{focal} · box β={num(self.box_loss_beta)}")


def current_marker(store: Store | None) -> RunMarker | None:
    """The latest run's loss settings, else the saved Train settings, else the defaults; None without a project."""
    if store is None:
        return None
    runs = store.runs()
    if runs:
        run = runs[-1]
        cfg = run.config if isinstance(run.config, dict) else {}
        return RunMarker.from_config(cfg, f"run #{run.id} {run.name} ({run.status})", run.model)
    try:
        saved = json.loads(store.get_meta(TRAIN_SETTINGS_KEY) or "{}")
    except ValueError:
        saved = {}
    if isinstance(saved, dict) and saved:
        return RunMarker.from_config(saved, "Train settings (no run yet)")
    return RunMarker.from_config({}, "defaults (no run yet)")
