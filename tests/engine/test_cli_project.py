"""Headless CLI: project commands, one-line errors, and no Qt import outside the GUI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from engine.project.store import Store


def test_new_demo_info(tmp_path: Path, capsys) -> None:
    assert main(["new", str(tmp_path / "empty")]) == 0
    assert Store(tmp_path / "empty").images() == []
    assert main(["new", str(tmp_path / "empty")]) == 1
    assert "already an AnchorLab project" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "d"), "--images", "6", "--unlabeled", "1", "--seed", "2"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 7 and set(out["class_counts"]) <= {"circle", "square", "triangle"}
    assert main(["info", "--project", str(tmp_path / "d")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["images"] == 7 and info["categories"] == ["circle", "square", "triangle"]


def test_bad_project_is_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["info", "--project", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no AnchorLab project" in err and "\n" not in err


def test_headless_commands_never_import_qt(tmp_path: Path) -> None:
    code = ("import sys; from gui.entry import main; rc = main(['info', '--project', sys.argv[1]]); "
            "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, 'Qt imported'; sys.exit(rc)")
    Store.create(tmp_path / "p").close()
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", code.replace("'info', '--project', sys.argv[1]", "'--help'"), "x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "anchorlab" in r.stdout, r.stderr
