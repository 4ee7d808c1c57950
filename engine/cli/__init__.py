"""Headless subcommands: ``anchorlab <command> --project DIR ...``. Never imports Qt.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its subcommands
and sets ``func`` (args -> exit code) on each. Failures print one line ``error: <reason>`` to
stderr and return a non-zero code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "engine.cli.project",
    "engine.cli.train",
    "engine.cli.interop",
    "engine.cli.xray",
    "engine.cli.analyze",
)
COMMANDS = ("models", "new", "demo", "info", "train", "eval", "predict", "xray", "import", "export", "analyze")


class CliError(Exception):
    """A reason to stop the command with a one-line message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anchorlab",
        description="AnchorLab: label images, train detectors, look inside them. "
                    "Run without a command (or with a project folder) to open the app.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user, not a traceback
        print(f"error: {type(e).__name__}: {e}" if not isinstance(e, CliError) else f"error: {e}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
