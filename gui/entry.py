"""The ``anchorlab`` console script. Imports Qt only when it opens the app.

``anchorlab`` / ``anchorlab PROJECT`` open the GUI; ``anchorlab <command> ...`` runs the headless
command from ``engine.cli`` (no Qt is imported, so it works on servers and under torchrun).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from engine.cli import COMMANDS

    if args and (args[0] in COMMANDS or args[0] in ("-h", "--help")):
        from engine.cli import main as cli_main

        return cli_main(args)
    from gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
