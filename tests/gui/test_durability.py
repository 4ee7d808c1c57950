"""Durability: a real window edits a project through the GUI event path and is killed with SIGKILL.

Reopening the project must show every edit the canvas showed: annotations (moved, relabeled, drawn,
painted), image tags and categories, with no save step anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.project.store import Store

CHILD = Path(__file__).with_name("durability_child.py")
ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_right_after_edits_loses_nothing_shown(demo_copy: Path, tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ANCHORLAB_SETTINGS=str(tmp_path / "settings.ini"),
               PYTHONPATH=str(ROOT))
    with Store(demo_copy) as s:
        before = {a.id: a for a in s.annotations()}
    proc = subprocess.Popen([sys.executable, str(CHILD), str(demo_copy)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines and lines[-1] == "ready", (lines, proc.stderr.read() if proc.poll() is not None else "")
        os.kill(proc.pid, signal.SIGKILL)  # no close, no atexit, no flush
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    shown = json.loads(lines[-2])
    assert shown["undo_steps"] == ["Move", "Relabel", "Add box", "Relabel", "Add polygon", "Paint mask",
                                   shown["tag_step"], "Add category late", "Add box"]
    assert shown["tag_step"] in (f"Tag {shown['tag_name']}", f"Untag {shown['tag_name']}")

    with Store(demo_copy) as s:
        image_id = shown["image_id"]
        stored = sorted([a.id, a.kind, json.dumps(a.geometry.to_json()), a.category_id]
                        for a in s.annotations(image_id))
        assert stored == shown["annotations"]
        assert sorted(s.image_tags(image_id)) == shown["tags"]
        cats = s.categories()
        assert [c.id for c in cats] == [c[0] for c in shown["categories"]] and cats[-1].name == "late"
        for cat, (_, text) in zip(cats, shown["categories"]):
            assert f"{cat.name}  ({s.category_usage(cat.id)})" in text
        new = {a.id: a for a in s.annotations()} .keys() - before.keys()
        kinds = sorted(s.annotation(i).kind for i in new)
        assert kinds == ["box", "box", "mask", "polygon"]
        assert s.annotation(max(new)).category_id == cats[-1].id  # the very last edit, just before the kill
        moved = [a for a in s.annotations(image_id) if a.id in before and
                 json.dumps(a.geometry.to_json()) != json.dumps(before[a.id].geometry.to_json())]
        # the demo box moved with its object (issue 12: box + mask share a group id and move as one)
        assert sorted(a.kind for a in moved) == ["box", "mask"] and len({a.group_id for a in moved}) == 1
