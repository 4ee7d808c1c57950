"""Persistent GUI settings (QSettings in an ini file; ``ANCHORLAB_SETTINGS`` overrides the path)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings


def settings() -> QSettings:
    path = os.environ.get("ANCHORLAB_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "AnchorLab", "anchorlab")


def recent_projects() -> list[str]:
    value = settings().value("recent_projects", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_project(path: str, limit: int = 10) -> None:
    items = [p for p in recent_projects() if p != path]
    s = settings()
    s.setValue("recent_projects", [path, *items][:limit])
    s.sync()
