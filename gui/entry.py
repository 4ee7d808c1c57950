"""The ``anchorlab`` console script. Imports Qt only when it opens the app.

``anchorlab`` / ``anchorlab PROJECT`` / ``anchorlab FOLDER`` open the GUI; ``anchorlab <command> ...`` runs the
headless command from ``engine.cli`` (no Qt is imported, so it works on servers and under torchrun);
``anchorlab desktop-entry [--install]`` writes a freedesktop ``.desktop`` file (Linux) so AnchorLab starts
from the desktop menu: printed, or with ``--install`` written to ``~/.local/share/applications`` with the icon.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def desktop_entry_text(exe: str, icon: str) -> str:
    """The ``.desktop`` file (freedesktop Desktop Entry Specification 1.5)."""
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=AnchorLab",
        "GenericName=Object detection and segmentation lab",
        "Comment=Label images, train detectors and segmenters, look inside the models",
        f"Exec={exe} %f",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Graphics;Science;Development;",
        "StartupWMClass=anchorlab",
        "Keywords=labeling;annotation;detection;segmentation;training;",
        "",
    ])


def desktop_entry(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="anchorlab desktop-entry",
                                     description="Print (or --install) a .desktop file so AnchorLab starts from the "
                                                 "desktop menu.")
    parser.add_argument("--install", action="store_true",
                        help="write it to $XDG_DATA_HOME/applications (default ~/.local/share/applications) "
                             "and the icon to .../icons/hicolor/scalable/apps")
    args = parser.parse_args(argv)
    from resources import ICON_SVG

    exe = shutil.which("anchorlab") or str(Path(sys.argv[0]).resolve())
    if not args.install:
        sys.stdout.write(desktop_entry_text(exe, str(ICON_SVG)))
        return 0
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    apps, icons = data / "applications", data / "icons" / "hicolor" / "scalable" / "apps"
    try:
        apps.mkdir(parents=True, exist_ok=True)
        icons.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ICON_SVG, icons / "anchorlab.svg")
        target = apps / "anchorlab.desktop"
        target.write_text(desktop_entry_text(exe, "anchorlab"), encoding="utf-8")
    except OSError as e:
        print(f"error: cannot install the desktop entry: {e}", file=sys.stderr)
        return 1
    print(f"installed {target} (icon {icons / 'anchorlab.svg'}); AnchorLab is now in the desktop menu")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from engine.cli import COMMANDS

    if args and args[0] == "desktop-entry":
        return desktop_entry(args[1:])
    if args and (args[0] in COMMANDS or args[0] in ("-h", "--help")):
        from engine.cli import main as cli_main

        return cli_main(args)
    from gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
