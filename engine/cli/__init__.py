"""Headless subcommands: ``anchorlab <command> --project DIR ...``. Never imports Qt.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its subcommands
and sets ``func`` (args -> exit code) on each. Failures print one line ``error: <reason>`` to
stderr (after ending any progress bar's line) and return a non-zero code; a bad flag value is
``error: ...`` with exit code 2. Library warnings (Pillow, numpy) become ``warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import NoReturn

COMMAND_MODULES = (
    "engine.cli.project",
    "engine.cli.train",
    "engine.cli.interop",
    "engine.cli.xray",
    "engine.cli.analyze",
    "engine.cli.cv",
    "engine.cli.assist",
    "engine.cli.report",
    "engine.cli.internals",
)
COMMANDS = ("models", "new", "demo", "info", "add-images", "train", "eval", "predict", "xray", "import", "export",
            "analyze", "folds", "cv", "prelabel", "rank", "suggestions", "report", "internals")


class CliError(Exception):
    """A reason to stop the command with a one-line message."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ``error: ...`` line (and where to find help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        from engine.cli.progress import end_all_lines

        end_all_lines()
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} -h')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="anchorlab",
        description="AnchorLab: label images, train detectors, look inside them. "
                    "Run without a command (or with a project folder) to open the app.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def error_line(e: BaseException) -> str:
    """One line for the user: our own errors as they are, an OS error as its cause and file, anything
    else with its class name (a bug: the name helps the report)."""
    from engine.project.formats.common import FormatError
    from engine.project.imageio import ImageReadError
    from engine.project.store import StoreError

    if isinstance(e, CliError | StoreError | FormatError | ImageReadError):
        text = str(e)
    elif isinstance(e, OSError) and e.strerror:
        text = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    else:
        text = f"{type(e).__name__}: {e}"
    return "error: " + " ".join(text.split())  # one line, whatever the message held


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Library warnings (Pillow, numpy) as ``warning: ...`` lines in our words, each once."""
    from engine.project.formats.common import warning_text

    seen: set[str] = set()
    for w in caught:
        if not issubclass(w.category, UserWarning | RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        text = warning_text(w)
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from engine.cli.progress import end_all_lines

    with warnings.catch_warnings(record=True) as caught:
        try:
            code = int(args.func(args) or 0)
        except KeyboardInterrupt:
            code, message = 130, "error: interrupted"
        except Exception as e:  # one line for the user, not a traceback
            code, message = 1, error_line(e)
        else:
            message = ""
    end_all_lines()  # a progress bar's line ends before anything else is printed
    _report_warnings(caught)
    if message:
        print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
