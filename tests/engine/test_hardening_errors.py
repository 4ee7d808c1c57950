"""Issue 20, clear errors: each bad input through the CLI gives one ``error: ...`` line, a non-zero exit,
and leaves the project database unchanged (compared before/after)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.cli.args import score
from engine.cli.progress import ProgressBar, end_all_lines
from engine.events import Progress
from engine.project.formats.common import FormatError
from engine.project.store import DB_NAME, ProjectOpenError, Store

ANCHORLAB = Path(sys.executable).parent / "anchorlab"
REPO = Path(__file__).resolve().parents[2]


def dump(project: Path) -> list[str]:
    con = sqlite3.connect(project / DB_NAME)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert sum(ln.startswith("error:") for ln in lines) == 1, err
    return lines[-1]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    p = tmp_path / "p"
    assert main(["new", str(p)]) == 0
    return p


def _labelme_ds(folder: Path, label: str = "car", points: object = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (9, 8, 7)).save(folder / "a.png")
    doc = {"version": "5.7.0", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 30,
           "imageWidth": 40, "shapes": [{"label": label, "points": points or [[1, 2], [10, 12]],
                                        "shape_type": "rectangle"}]}
    (folder / "a.json").write_text(json.dumps(doc))
    return folder


# -- 4: VOC and control characters; every exporter re-reads its output -----------------------------
def test_voc_export_refuses_a_control_character_in_a_category(project: Path, tmp_path: Path, capsys) -> None:
    assert main(["import", "--format", "labelme", str(_labelme_ds(tmp_path / "ds", "bad\x01name")),
                 "--project", str(project)]) == 0
    before = dump(project)
    capsys.readouterr()
    for fmt in ("voc", "masks"):
        assert main(["export", "--format", fmt, "--out", str(tmp_path / fmt), "--project", str(project)]) == 1
        line = one_error(capsys.readouterr().err)
        assert "U+0001" in line and "rename the category" in line
        assert not (tmp_path / fmt).exists()
    assert dump(project) == before


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo", "labelme", "masks"])
def test_every_exporter_re_reads_its_own_output(fmt: str, project: Path, tmp_path: Path, capsys) -> None:
    name = 'a&b <c> "d" \u00e9t\u00e9 \u732b'
    ds = tmp_path / "ds"
    _labelme_ds(ds, name)
    doc = json.loads((ds / "a.json").read_text())
    doc["shapes"].append({"label": name, "points": [[2, 2], [20, 3], [12, 20]], "shape_type": "polygon",
                          "group_id": 1})
    doc["shapes"].append({"label": name, "points": [[2, 2], [20, 20]], "shape_type": "rectangle", "group_id": 1})
    (ds / "a.json").write_text(json.dumps(doc))
    assert main(["import", "--format", "labelme", str(ds), "--project", str(project)]) == 0
    out = tmp_path / "out"
    assert main(["export", "--format", fmt, "--out", str(out), "--project", str(project)]) == 0
    assert not (out / ".anchorlab-export-incomplete").exists()
    back = tmp_path / "back"
    assert main(["new", str(back)]) == 0
    src = out / "data.yaml" if fmt == "yolo" else out
    assert main(["import", "--format", fmt, str(src), "--project", str(back)]) == 0, capsys.readouterr()
    with Store(back) as s:
        assert [c.name for c in s.categories()] == [name]
        assert len(s.images()) == 1 and len(s.annotations()) >= 1


# -- 5: damaged databases --------------------------------------------------------------------------
def _bad_db(kind: str, root: Path) -> Path:
    root.mkdir()
    db = root / DB_NAME
    if kind == "empty":
        db.write_bytes(b"")
    elif kind == "garbage":
        db.write_bytes(os.urandom(8192))
    elif kind == "other-sqlite":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE notes (t TEXT)")
        con.commit()
        con.close()
    else:
        with Store.create(root) as s:
            s.add_images([(f"i{i}.png", 10, 10, "x" * 200, "train") for i in range(1500)])
        if kind == "damaged":
            b = bytearray(db.read_bytes())
            n = len(b) // 4096
            for pg in (n // 2, n // 2 + 1):
                b[pg * 4096:(pg + 1) * 4096] = os.urandom(4096)
            db.write_bytes(bytes(b))
        else:
            con = sqlite3.connect(db)
            con.execute("UPDATE meta SET value=? WHERE key='schema_version'", ("999" if kind == "future" else "abc",))
            con.commit()
            con.close()
    return root


@pytest.mark.parametrize("kind,words", [("empty", "empty (0 bytes)"), ("garbage", "not SQLite"),
                                        ("other-sqlite", "not an AnchorLab project"), ("damaged", "damaged"),
                                        ("future", "newer than this AnchorLab"), ("nonnumeric", "not a number")])
def test_a_bad_database_is_refused_with_one_line_and_never_written(kind: str, words: str, tmp_path: Path,
                                                                   capsys) -> None:
    root = _bad_db(kind, tmp_path / "p")
    before = file_digest(root / DB_NAME)
    ds = _labelme_ds(tmp_path / "ds")
    for argv in (["info", "--project", str(root)],
                 ["import", "--format", "labelme", str(ds), "--project", str(root)],
                 ["export", "--format", "coco", "--out", str(tmp_path / "o"), "--project", str(root)]):
        assert main(argv) == 1
        line = one_error(capsys.readouterr().err)
        assert words in line and str(root / DB_NAME) in line
    assert file_digest(root / DB_NAME) == before
    assert not (root / (DB_NAME + "-wal")).exists() or (root / (DB_NAME + "-wal")).stat().st_size == 0
    with pytest.raises(ProjectOpenError):  # the class the GUI catches to show a dialog
        Store(root)


def test_info_check_runs_the_full_integrity_check(project: Path, capsys) -> None:
    assert main(["info", "--project", str(project), "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["integrity"] == "ok"


# -- 10: paths outside the dataset -----------------------------------------------------------------
def _yolo(folder: Path, path_line: str, val: str = "images/val") -> Path:
    for sp in ("train", "val"):
        (folder / "images" / sp).mkdir(parents=True, exist_ok=True)
        (folder / "labels" / sp).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 10), (1, 2, 3 + len(sp))).save(folder / "images" / sp / f"{sp}.png")
        (folder / "labels" / sp / f"{sp}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "data.yaml").write_text(f"{path_line}\ntrain: images/train\nval: {val}\nnames: [car]\n")
    return folder / "data.yaml"


def test_yolo_path_outside_the_dataset_is_refused(project: Path, tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    _yolo(elsewhere, "")
    ds = tmp_path / "ds"
    ds.mkdir()
    cfg = _yolo(ds, f"path: {elsewhere}")
    before = dump(project)
    assert main(["import", "--format", "yolo", str(cfg), "--project", str(project)]) == 1
    line = one_error(capsys.readouterr().err)
    assert "outside the dataset folder" in line and str(elsewhere) in line
    (ds / "data.yaml").write_text("path: /etc\ntrain: .\nnames: [car]\n")
    assert main(["import", "--format", "yolo", str(ds), "--project", str(project)]) == 1
    assert "outside the dataset folder" in one_error(capsys.readouterr().err)
    assert dump(project) == before
    # allowed when the user names that folder with --images
    (ds / "data.yaml").write_text(f"path: {elsewhere}\ntrain: images/train\nval: images/val\nnames: [car]\n")
    assert main(["import", "--format", "yolo", str(cfg), "--project", str(project), "--images",
                 str(elsewhere)]) == 0


# -- 15: bad values --------------------------------------------------------------------------------
def test_yolo_train_and_val_in_one_folder_are_refused(project: Path, tmp_path: Path, capsys) -> None:
    cfg = _yolo(tmp_path / "ds", "", val="images/train")
    before = dump(project)
    assert main(["import", "--format", "yolo", str(cfg), "--project", str(project)]) == 1
    assert "share images" in one_error(capsys.readouterr().err)
    assert dump(project) == before


@pytest.mark.parametrize("counts,why", [("0000", "counts cover"), ("PPPP", "ends inside"), ("\x7f1", "alphabet"),
                                        ([5, 5], "counts cover"), ([-3, 1203], "must be >= 0")])
def test_coco_rle_with_invalid_counts_is_refused(counts: object, why: str, project: Path, tmp_path: Path,
                                                 capsys) -> None:
    data = tmp_path / "d"
    data.mkdir()
    Image.new("RGB", (40, 30)).save(data / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                            "segmentation": {"size": [30, 40], "counts": counts}}],
           "categories": [{"id": 1, "name": "car"}]}
    (data / "c.json").write_text(json.dumps(doc))
    before = dump(project)
    assert main(["import", "--format", "coco", str(data / "c.json"), "--project", str(project)]) == 1
    out = capsys.readouterr().out
    assert "c.json" in out and why in out
    assert dump(project) == before


def test_labelme_points_given_as_strings_are_refused(project: Path, tmp_path: Path, capsys) -> None:
    ds = _labelme_ds(tmp_path / "ds", points=[["1", "2"], ["10", "12"]])
    before = dump(project)
    assert main(["import", "--format", "labelme", str(ds), "--project", str(project)]) == 1
    assert "a.json" in (out := capsys.readouterr().out) and "expected numbers" in out
    assert dump(project) == before


def test_nan_already_in_a_project_is_exported_as_null(project: Path, tmp_path: Path, capsys) -> None:
    assert main(["import", "--format", "labelme", str(_labelme_ds(tmp_path / "ds")), "--project", str(project)]) == 0
    con = sqlite3.connect(project / DB_NAME)  # e.g. written by an older AnchorLab
    con.execute("UPDATE annotations SET attributes='{\"conf\": NaN}', score=NULL")
    con.commit()
    con.close()
    for fmt in ("coco", "labelme"):
        assert main(["export", "--format", fmt, "--out", str(tmp_path / fmt), "--project", str(project)]) == 0
        assert "NaN/Infinity value(s) written as null" in capsys.readouterr().out
        for f in (tmp_path / fmt).rglob("*.json"):
            json.loads(f.read_text(), parse_constant=lambda t, f=f: pytest.fail(f"{t} in {f}"))


# -- 11: disk full ---------------------------------------------------------------------------------
def test_new_on_a_full_disk_leaves_no_database(tmp_path: Path) -> None:
    r = subprocess.run([str(ANCHORLAB), "new", str(tmp_path / "q")], capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048)))
    assert r.returncode == 1
    line = one_error(r.stderr)
    assert str(tmp_path / "q" / DB_NAME) in line and "nothing was saved" in line
    assert not (tmp_path / "q").exists()


def test_import_on_a_full_database_disk_names_the_cause(project: Path, tmp_path: Path) -> None:
    ds = _labelme_ds(tmp_path / "ds", points=[[1, 2], [10, 12]])
    doc = json.loads((ds / "a.json").read_text())
    doc["shapes"].append({"label": "big", "shape_type": "polygon",
                          "points": [[1 + (i % 37), 1 + (i % 23)] for i in range(3000)]})
    (ds / "a.json").write_text(json.dumps(doc))
    before = dump(project)
    code = ("import sqlite3, sys\n"
            "real = sqlite3.connect\n"
            "def full(*a, **k):\n"
            "    c = real(*a, **k)\n"
            "    n = c.execute('PRAGMA page_count').fetchone()[0]\n"
            "    c.execute(f'PRAGMA max_page_count={n}')  # the disk is full: the file cannot grow\n"
            "    return c\n"
            "sqlite3.connect = full\n"
            "from engine.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "import", "--format", "labelme", str(ds), "--project",
                        str(project)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 1, r.stderr
    line = one_error(r.stderr)
    assert line.startswith("error: No space left on device") and str(project / DB_NAME) in line
    assert "rollback" not in r.stderr
    assert dump(project) == before
    assert not (project / "images").exists() or not any((project / "images").rglob("*.png"))


def test_file_write_failing_for_space_names_the_file(project: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import engine.project.formats.session as session

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    outside = tmp_path / "outside"
    _labelme_ds(outside)
    before = dump(project)
    monkeypatch.setattr(session.shutil, "copyfile", no_space)
    assert main(["import", "--format", "labelme", str(outside), "--project", str(project)]) == 1
    line = one_error(capsys.readouterr().err)
    assert line.startswith("error: No space left on device: ") and "a.png" in line
    assert dump(project) == before


def test_a_failed_export_does_not_block_the_retry(project: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    assert main(["import", "--format", "labelme", str(_labelme_ds(tmp_path / "ds")), "--project", str(project)]) == 0
    out = tmp_path / "out"
    real = Path.write_text

    def full(self: Path, *a: object, **k: object) -> int:
        if self.suffix == ".json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    assert main(["export", "--format", "coco", "--out", str(out), "--project", str(project)]) == 1
    assert one_error(capsys.readouterr().err).startswith("error: No space left on device: ")
    monkeypatch.undo()
    assert not out.exists()
    # a folder left by a killed export (marker still there) is taken over too
    out.mkdir()
    (out / ".anchorlab-export-incomplete").write_text("x")
    (out / "half.json").write_text("{")
    assert main(["export", "--format", "coco", "--out", str(out), "--project", str(project)]) == 0
    assert not (out / "half.json").exists() and (out / "annotations").is_dir()
    # a folder with the user's own files is still refused
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["export", "--format", "coco", "--out", str(tmp_path / "mine"), "--project", str(project)]) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


# -- 13: CLI flags -----------------------------------------------------------------------------------
def test_bad_flag_values_are_refused_with_one_line(project: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "d"), "--images", "-5"])
    assert e.value.code == 2
    assert "must be at least 1" in one_error(capsys.readouterr().err)
    assert not (tmp_path / "d").exists()
    for bad in ("nan", "inf", "-0.5", "x"):
        with pytest.raises(Exception, match="finite|between|number"):
            score(bad)
    assert score("0.25") == 0.25
    before = dump(project)
    for argv, words in ((["--format", "voc", "--task", "detect", "--remap"], "--remap applies to --format coco"),
                        (["--format", "labelme", "--task", "segment"], "--task applies to --format yolo")):
        assert main(["export", *argv, "--out", str(tmp_path / "o"), "--project", str(project)]) == 1
        assert words in one_error(capsys.readouterr().err)
        assert not (tmp_path / "o").exists()
    assert main(["import", "--format", "coco", str(tmp_path), "--names", "a,b", "--project", str(project)]) == 1
    assert "--names applies to" in one_error(capsys.readouterr().err)
    assert dump(project) == before


def test_xray_out_reports_a_file_in_the_way_before_any_work(project: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile" / "sub" / "x.npz", "is a file, not a folder"),
                       (tmp_path, "is a folder")):
        target = out if out.suffix else out / "dir.npz"
        if words == "is a folder":
            target.mkdir()
        assert main(["xray", "--project", str(project), "--image", "1", "--out", str(target)]) == 1
        assert words in one_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir.npz", "p"]


# -- 16: progress lines and library warnings -------------------------------------------------------
def test_progress_line_ends_before_the_error_line(project: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import engine.cli.interop as interop

    def failing(config: dict, sink: object, cancel: object) -> dict:
        sink(Progress(3, 10, "working"))
        raise FormatError("something went wrong")

    monkeypatch.setattr(interop, "import_job", failing)
    assert main(["import", "--format", "coco", str(tmp_path), "--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert "\nerror: something went wrong\n" in err and err.count("error:") == 1
    bar = ProgressBar(io.StringIO(), min_interval_s=0)
    bar.update(1, 4, "x")
    end_all_lines()
    bar.end_line()
    assert bar.stream.getvalue().endswith("x" + " " * 59 + "\n") and bar.stream.getvalue().count("\n") == 1


def test_pillow_warnings_are_reported_in_our_words(project: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import warnings

    import engine.project.formats.common as common

    real = common.image_size

    def noisy(path: Path) -> tuple[int, int]:
        warnings.warn_explicit("Truncated File Read", UserWarning, "/x/PIL/ImageFile.py", 1)
        return real(path)

    monkeypatch.setattr(common, "image_size", noisy)
    assert main(["import", "--format", "labelme", str(_labelme_ds(tmp_path / "ds")), "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Pillow warned while reading it: Truncated File Read" in out
