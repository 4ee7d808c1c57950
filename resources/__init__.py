"""Package data: the application icon (``anchorlab.svg``, ``anchorlab.png``), theme and default configs."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ICON_SVG = HERE / "anchorlab.svg"
ICON_PNG = HERE / "anchorlab.png"
