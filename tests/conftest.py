"""Shared fixtures. Qt runs offscreen: without a display Qt would abort the whole pytest process."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("ANCHORLAB_DEMO_DIR", "/nonexistent-anchorlab-demo")  # tests never touch the user's demo

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo project (40 labeled + 4 unlabeled images). Treat as read-only: copy before writing."""
    from engine.data.demo import generate_demo

    root = tmp_path_factory.mktemp("demo") / "project"
    generate_demo(root, images=40, seed=7, unlabeled=4)
    return root


@pytest.fixture()
def demo_copy(demo_project: Path, tmp_path: Path) -> Path:
    """A writable copy of the small demo project."""
    import shutil

    dst = tmp_path / "project"
    shutil.copytree(demo_project, dst)
    return dst
