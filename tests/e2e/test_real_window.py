"""A real window on Xvfb: start `anchorlab PROJECT`, screenshot the X screen, find the image and a box.

Skipped when Xvfb, xdotool or ImageMagick's `import` are missing (CI installs them in .ci/run); under
CI=true it fails instead, so CI cannot pass by skipping it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.demo import COLORS, generate_demo
from engine.project.imageio import read_rgb

pytestmark = pytest.mark.e2e
TOOLS = ("Xvfb", "xdotool", "import")


@pytest.fixture()
def display() -> str:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    skip = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if missing:
        skip(f"real-window test needs {', '.join(missing)}")
    num = 90 + os.getpid() % 100
    xvfb = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if xvfb.poll() is not None:
        skip("Xvfb did not start")
    yield f":{num}"
    xvfb.send_signal(signal.SIGTERM)
    xvfb.wait(10)


def _screenshot(env: dict, path: Path) -> np.ndarray:
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=30)
    return read_rgb(path)


def _find(screen: np.ndarray, image: np.ndarray) -> tuple[float, float, tuple[int, int]]:
    """Best normalised correlation of ``image`` in ``screen`` over display scales; (score, scale, top-left)."""
    best = (-1.0, 0.0, (0, 0))
    small = cv2.resize(screen, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    for scale in np.arange(0.5, 4.01, 0.05):
        t = cv2.resize(image, None, fx=scale * 0.25, fy=scale * 0.25, interpolation=cv2.INTER_AREA)
        if t.shape[0] >= small.shape[0] or t.shape[1] >= small.shape[1] or min(t.shape[:2]) < 8:
            continue
        res = cv2.matchTemplate(small, t, cv2.TM_CCOEFF_NORMED)
        _, score, _, loc = cv2.minMaxLoc(res)
        if score > best[0]:
            best = (float(score), float(scale), (loc[0] * 4, loc[1] * 4))
    return best


def test_window_shows_demo_image_and_boxes(display: str, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    generate_demo(project, images=6, seed=0, unlabeled=0)
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "ANCHORLAB_SETTINGS": str(tmp_path / "settings.ini")}
    app = subprocess.Popen([sys.executable, "-m", "gui.entry", str(project)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        win = ""
        while time.time() < deadline and not win:
            r = subprocess.run(["xdotool", "search", "--name", "AnchorLab"], env=env, capture_output=True, text=True)
            win = r.stdout.split()[0] if r.stdout.split() else ""
            time.sleep(0.5)
        assert win, f"no AnchorLab window appeared: {app.stdout.read1().decode() if app.poll() is not None else ''}"
        time.sleep(2.0)  # first paint
        screen = _screenshot(env, tmp_path / "screen.png")
        image = read_rgb(project / "images" / "demo_0000.png")
        score, scale, (x0, y0) = _find(screen, image)
        assert score > 0.8, f"demo image not found on screen (best correlation {score:.2f})"
        h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
        region = screen[max(0, y0 - 4):y0 + h + 4, max(0, x0 - 4):x0 + w + 4].astype(int)
        box_pixels = 0
        for hex_color in COLORS:
            rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
            box_pixels += int((np.abs(region - rgb).sum(-1) <= 6).sum())
        assert box_pixels > 100, "no box outline in a category colour over the image"
        subprocess.run(["xdotool", "windowfocus", "--sync", win], env=env, timeout=10)
        subprocess.run(["xdotool", "key", "ctrl+q"], env=env, timeout=10)  # File > Quit
        try:
            rc = app.wait(15)
        except subprocess.TimeoutExpired:
            app.send_signal(signal.SIGTERM)  # the app closes its window cleanly on SIGTERM too
            rc = app.wait(15)
        assert rc == 0
        shutil.copy(tmp_path / "screen.png", Path(__file__).parent / "last_screen.png") if os.environ.get(
            "ANCHORLAB_KEEP_SCREEN") else None
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
